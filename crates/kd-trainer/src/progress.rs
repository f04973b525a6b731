//! A progress line per epoch on terminals, and a summary line per epoch everywhere.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Draws `epoch 2/10 [=====>    ] 120/469 loss 0.532 310 img/s` on stderr when it is a terminal.
pub struct Progress {
    enabled: bool,
    label: String,
    total: usize,
    start: Instant,
    last: Instant,
}

impl Progress {
    /// A bar for `total` steps; drawn only on a terminal and when not silent.
    pub fn new(label: String, total: usize, silent: bool) -> Self {
        let now = Instant::now();
        Self {
            enabled: !silent && std::io::stderr().is_terminal(),
            label,
            total,
            start: now,
            last: now - Duration::from_secs(1),
        }
    }

    /// Updates the bar after `done` steps and `samples` images.
    pub fn tick(&mut self, done: usize, samples: usize, loss: f32) {
        if !self.enabled || (self.last.elapsed() < Duration::from_millis(200) && done < self.total)
        {
            return;
        }
        self.last = Instant::now();
        let width = 24;
        let filled = (done * width)
            .checked_div(self.total)
            .unwrap_or(width)
            .min(width);
        let rate = samples as f64 / self.start.elapsed().as_secs_f64().max(1e-9);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{} [{}{}] {done}/{} loss {loss:.4} {rate:.0} img/s ",
            self.label,
            "=".repeat(filled),
            " ".repeat(width - filled),
            self.total
        );
        let _ = err.flush();
    }

    /// Clears the bar.
    pub fn finish(&self) {
        if self.enabled {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(100));
            let _ = err.flush();
        }
    }
}
