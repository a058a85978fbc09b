//! Motion detection by luma differencing: each decoded picture is reduced to a small grid of
//! mean brightness (see [`super::decode::LumaGrid`]); a cell has changed when it differs from the
//! previous picture by more than a threshold, and motion is reported when enough cells inside
//! the configured zones changed.

use serde::Deserialize;

use super::decode::LumaGrid;

/// A rectangle of the picture, in fractions of its width and height (0.0 to 1.0).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Zone {
    /// Left edge.
    pub x: f32,
    /// Top edge.
    pub y: f32,
    /// Width.
    pub width: f32,
    /// Height.
    pub height: f32,
}

impl Zone {
    fn contains(&self, fx: f32, fy: f32) -> bool {
        fx >= self.x && fx < self.x + self.width && fy >= self.y && fy < self.y + self.height
    }
}

/// Motion detector settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionSettings {
    /// 1 (only large, strong changes) to 100 (the slightest change); 50 by default.
    pub sensitivity: u8,
    /// Where to look; the whole picture when empty.
    pub zones: Vec<Zone>,
}

impl Default for MotionSettings {
    fn default() -> Self {
        Self {
            sensitivity: 50,
            zones: Vec::new(),
        }
    }
}

/// Compares each picture with the one before.
#[derive(Debug, Clone)]
pub struct MotionDetector {
    settings: MotionSettings,
    previous: Option<LumaGrid>,
}

impl MotionDetector {
    /// A detector with `settings`.
    #[must_use]
    pub fn new(settings: MotionSettings) -> Self {
        Self {
            settings,
            previous: None,
        }
    }

    /// The fraction (0.0 to 1.0) of watched cells that changed since the last picture.
    pub fn changed_fraction(&mut self, grid: &LumaGrid) -> f32 {
        let previous = self.previous.replace(grid.clone());
        let Some(previous) = previous.filter(|p| p.cols == grid.cols && p.rows == grid.rows) else {
            return 0.0;
        };
        let sensitivity = i16::from(self.settings.sensitivity.clamp(1, 100));
        // Sensitivity 1 needs a luma step of 60, 100 a step of 6.
        let threshold = 60 - (sensitivity - 1) * 54 / 99;
        let (mut watched, mut changed) = (0u32, 0u32);
        for row in 0..grid.rows {
            for col in 0..grid.cols {
                #[allow(clippy::cast_precision_loss)]
                let (fx, fy) = (
                    (col as f32 + 0.5) / grid.cols as f32,
                    (row as f32 + 0.5) / grid.rows as f32,
                );
                if !self.settings.zones.is_empty()
                    && !self.settings.zones.iter().any(|z| z.contains(fx, fy))
                {
                    continue;
                }
                let i = row * grid.cols + col;
                let diff = i16::from(grid.cells[i]) - i16::from(previous.cells[i]);
                watched += 1;
                if diff.abs() >= threshold {
                    changed += 1;
                }
            }
        }
        if watched == 0 {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let fraction = changed as f32 / watched as f32;
        fraction
    }

    /// Whether this picture shows motion: more than 0.5% (at sensitivity 100) to 10% (at 1) of
    /// the watched cells changed.
    pub fn detect(&mut self, grid: &LumaGrid) -> bool {
        let fraction = self.changed_fraction(grid);
        let sensitivity = f32::from(self.settings.sensitivity.clamp(1, 100));
        let needed = 0.10 - (sensitivity - 1.0) * 0.095 / 99.0;
        fraction > needed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(cells: Vec<u8>) -> LumaGrid {
        LumaGrid {
            cols: 4,
            rows: 4,
            cells,
        }
    }

    #[test]
    fn reports_change_only_inside_zones() {
        let still = grid(vec![100; 16]);
        let mut moved = vec![100; 16];
        moved[0] = 200; // top-left cell
        let moved = grid(moved);
        let mut whole = MotionDetector::new(MotionSettings::default());
        assert!(!whole.detect(&still));
        assert!(!whole.detect(&still));
        assert!(whole.detect(&moved));

        let mut bottom = MotionDetector::new(MotionSettings {
            sensitivity: 100,
            zones: vec![Zone {
                x: 0.0,
                y: 0.5,
                width: 1.0,
                height: 0.5,
            }],
        });
        assert!(!bottom.detect(&still));
        assert!(!bottom.detect(&moved), "change outside the zone is ignored");
    }

    #[test]
    fn sensitivity_sets_the_step_that_counts() {
        let a = grid(vec![100; 16]);
        let b = grid(vec![120; 16]);
        let mut low = MotionDetector::new(MotionSettings {
            sensitivity: 1,
            zones: vec![],
        });
        low.detect(&a);
        assert!(!low.detect(&b));
        let mut high = MotionDetector::new(MotionSettings {
            sensitivity: 100,
            zones: vec![],
        });
        high.detect(&a);
        assert!(high.detect(&b));
    }
}
