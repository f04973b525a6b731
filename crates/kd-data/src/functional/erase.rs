//! Overwriting a rectangle of an image (torchvision `erase`).

use super::{CropBox, check_len, invalid};
use crate::error::DataError;

/// Overwrites `bx` of `data` (`shape`) with `values`: one value per channel, or one per erased
/// pixel (`C × height × width`, channel-major) for random erasing.
///
/// The box must lie inside the image.
pub fn erase(
    data: &mut [f32],
    shape: [usize; 3],
    bx: CropBox,
    values: &[f32],
) -> Result<(), DataError> {
    check_len("erase", data, shape)?;
    let [c, h, w] = shape;
    let inside = bx.top >= 0
        && bx.left >= 0
        && bx.top as usize + bx.height <= h
        && bx.left as usize + bx.width <= w;
    if !inside {
        return Err(invalid(
            "erase",
            format!("box {bx:?} is not inside the {h}x{w} image: keep the box inside the image"),
        ));
    }
    let area = bx.height * bx.width;
    let per_pixel = values.len() == c * area;
    if values.len() != c && !per_pixel {
        return Err(invalid(
            "erase",
            format!(
                "{} values for {c} channels and a {}x{} box: give one value per channel or one per erased pixel",
                values.len(),
                bx.height,
                bx.width
            ),
        ));
    }
    let (top, left) = (bx.top as usize, bx.left as usize);
    for ch in 0..c {
        for y in 0..bx.height {
            let row = &mut data[(ch * h + top + y) * w + left..][..bx.width];
            if per_pixel {
                row.copy_from_slice(&values[(ch * bx.height + y) * bx.width..][..bx.width]);
            } else {
                row.fill(values[ch]);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erase_fills_the_box_per_channel_or_per_pixel() {
        let mut d = vec![0.0f32; 2 * 3 * 3];
        let bx = CropBox {
            top: 1,
            left: 1,
            height: 2,
            width: 1,
        };
        erase(&mut d, [2, 3, 3], bx, &[5.0, 7.0]).unwrap();
        assert_eq!(d.iter().filter(|&&v| v == 5.0).count(), 2);
        assert_eq!((d[4], d[7], d[9 + 4]), (5.0, 5.0, 7.0));
        erase(&mut d, [2, 3, 3], bx, &[1.0, 2.0, 3.0, 4.0]).unwrap();
        assert_eq!((d[4], d[7], d[13], d[16]), (1.0, 2.0, 3.0, 4.0));
        assert!(erase(&mut d, [2, 3, 3], bx, &[1.0; 3]).is_err());
    }
}
