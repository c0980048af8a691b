//! Pictures read as grids (`--target IMAGE`, `--init IMAGE`): any PNG,
//! converted to grey levels (or RGB) in [0, 1] and resized to the grid.

use crate::RunError;
use std::path::Path;

/// `path` as `rows` x `cols` grey levels in [0, 1], row-major, row 0 at the
/// top of the picture.
pub fn load_gray(path: &Path, rows: usize, cols: usize) -> Result<Vec<f32>, RunError> {
    Ok(load(path, rows, cols)?.to_luma32f().into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
}

/// `path` as `rows` x `cols` x 3 colours (red, green, blue) in [0, 1],
/// row-major, row 0 at the top of the picture.
pub fn load_rgb(path: &Path, rows: usize, cols: usize) -> Result<Vec<f32>, RunError> {
    Ok(load(path, rows, cols)?.to_rgb32f().into_raw().into_iter().map(|v| v.clamp(0.0, 1.0)).collect())
}

/// `path` decoded and resized to `rows` x `cols`.
fn load(path: &Path, rows: usize, cols: usize) -> Result<image::DynamicImage, RunError> {
    let fail = |message: String| RunError::Image { path: path.to_path_buf(), message };
    let picture = image::ImageReader::open(path)
        .map_err(|e| fail(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .decode()
        .map_err(|e| fail(e.to_string()))?;
    let (w, h) = (u32::try_from(cols).map_err(|e| fail(e.to_string()))?, u32::try_from(rows).map_err(|e| fail(e.to_string()))?);
    Ok(picture.resize_exact(w, h, image::imageops::FilterType::Triangle))
}
