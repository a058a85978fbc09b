//! Video in the camera: the synthetic source, decoding for motion and thumbnails, and motion
//! detection. Containers (access units, MP4) are in `keyhole-media`.

pub mod decode;
pub mod motion;
pub mod synthetic;

/// Why video could not be made or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VideoError {
    /// The H.264 encoder or decoder failed.
    #[error("video codec: {0}")]
    Codec(String),
    /// A setting the camera cannot honour.
    #[error("unsupported video setting: {0}")]
    Unsupported(String),
}
