//! Motion detection against a learned background: each decoded picture is reduced to a small
//! grid of mean brightness (see [`super::decode::LumaGrid`]). Each cell keeps a background
//! brightness and how much it wobbles by itself (sensor noise, a clock on the picture, leaves);
//! a cell is in the foreground when it differs from its background by more than both a step set
//! by the sensitivity and a few times its own wobble. Motion is reported when enough watched
//! cells (those inside the zones) are in the foreground in two pictures running: a person-sized
//! object moving anywhere in the picture, not its edges only, as comparing each picture with the
//! one before would see. Where nothing moves, the background follows slow changes (daylight);
//! something that stops moving fades into it in about half a minute.

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

/// How fast a cell's background follows its brightness where nothing moves (per picture).
const LEARN: f32 = 0.05;
/// How fast it does where something is (what stops moving fades in, in about 30 s at 15 fps).
const LEARN_FOREGROUND: f32 = 0.002;
/// How fast a cell's wobble follows how far it is from its background: slowly, so a passer-by
/// barely changes it, and something that stays (or flickers) in a cell makes it deaf to that
/// within half a minute.
const LEARN_WOBBLE: f32 = 0.002;
/// The first pictures teach the scene (its wobble learnt fast); no motion is reported meanwhile.
const WARM_UP: u32 = 30;
const LEARN_WOBBLE_WARM_UP: f32 = 0.1;
/// A cell is foreground only when it differs by more than this many times its wobble.
const WOBBLES: f32 = 4.0;
/// Pictures running with enough foreground before motion is reported.
const PERSISTENCE: u32 = 2;

/// Watches a stream of pictures for motion.
#[derive(Debug, Clone)]
pub struct MotionDetector {
    settings: MotionSettings,
    /// Per cell: background brightness, wobble, and whether it is inside the zones; empty until
    /// the first picture (and again if the picture's size changes).
    cells: Vec<Cell>,
    size: (usize, usize),
    /// Pictures running with enough foreground.
    streak: u32,
    /// Pictures seen since the first (of this size), up to [`WARM_UP`].
    seen: u32,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    background: f32,
    wobble: f32,
    watched: bool,
}

/// `from` at sensitivity 1 to `to` at 100, on a logarithmic scale.
fn by_sensitivity(sensitivity: u8, from: f32, to: f32) -> f32 {
    let t = f32::from(sensitivity.clamp(1, 100) - 1) / 99.0;
    from * (to / from).powf(t)
}

impl MotionDetector {
    /// A detector with `settings`.
    #[must_use]
    pub fn new(settings: MotionSettings) -> Self {
        Self {
            settings,
            cells: Vec::new(),
            size: (0, 0),
            streak: 0,
            seen: 0,
        }
    }

    /// The luma step a cell must differ by: 40 at sensitivity 1, 4 at 100 (13 at 50).
    fn step(&self) -> f32 {
        by_sensitivity(self.settings.sensitivity, 40.0, 4.0)
    }

    /// The fraction of watched cells that must be foreground: 3 % at sensitivity 1, 0.1 % at
    /// 100 (0.56 % at 50: a person a tenth of the picture's height, standing or walking).
    fn needed(&self) -> f32 {
        by_sensitivity(self.settings.sensitivity, 0.03, 0.001)
    }

    /// The fraction (0.0 to 1.0) of watched cells in the foreground in this picture, which it
    /// then learns from. The first picture (of a size) is the background, and the
    /// `WARM_UP` after it teach the scene: 0 for those.
    pub fn foreground_fraction(&mut self, grid: &LumaGrid) -> f32 {
        if self.size != (grid.cols, grid.rows) || self.cells.len() != grid.cells.len() {
            self.learn_first(grid);
            return 0.0;
        }
        let step = self.step();
        let warming_up = self.seen < WARM_UP;
        self.seen = (self.seen + 1).min(WARM_UP);
        let learn_wobble = if warming_up {
            LEARN_WOBBLE_WARM_UP
        } else {
            LEARN_WOBBLE
        };
        let (mut watched, mut foreground) = (0u32, 0u32);
        for (cell, &luma) in self.cells.iter_mut().zip(&grid.cells) {
            let luma = f32::from(luma);
            let distance = (luma - cell.background).abs();
            let moving = distance > step.max(WOBBLES * cell.wobble);
            if cell.watched {
                watched += 1;
                foreground += u32::from(moving);
            }
            let learn = if moving && !warming_up {
                LEARN_FOREGROUND
            } else {
                LEARN
            };
            cell.background += learn * (luma - cell.background);
            // Capped: no cell becomes deaf to a change of eight steps.
            cell.wobble += learn_wobble * (distance.min(2.0 * step) - cell.wobble);
        }
        if watched == 0 || warming_up {
            return 0.0;
        }
        #[allow(clippy::cast_precision_loss)]
        let fraction = foreground as f32 / watched as f32;
        fraction
    }

    fn learn_first(&mut self, grid: &LumaGrid) {
        self.size = (grid.cols, grid.rows);
        self.streak = 0;
        self.seen = 0;
        let zones = &self.settings.zones;
        self.cells = grid
            .cells
            .iter()
            .enumerate()
            .map(|(i, &luma)| {
                #[allow(clippy::cast_precision_loss)]
                let (fx, fy) = (
                    ((i % grid.cols) as f32 + 0.5) / grid.cols as f32,
                    ((i / grid.cols) as f32 + 0.5) / grid.rows as f32,
                );
                Cell {
                    background: f32::from(luma),
                    wobble: 1.0,
                    watched: zones.is_empty() || zones.iter().any(|z| z.contains(fx, fy)),
                }
            })
            .collect();
    }

    /// Whether this picture shows motion: enough of the watched cells in the foreground, in
    /// this picture and the one before.
    pub fn detect(&mut self, grid: &LumaGrid) -> bool {
        let enough = self.foreground_fraction(grid) > self.needed();
        self.streak = if enough { self.streak + 1 } else { 0 };
        self.streak >= PERSISTENCE
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

    /// A detector that has learnt a still scene of 100 everywhere.
    fn warmed(settings: MotionSettings) -> MotionDetector {
        let mut d = MotionDetector::new(settings);
        for _ in 0..=WARM_UP {
            assert!(!d.detect(&grid(vec![100; 16])));
        }
        d
    }

    #[test]
    fn reports_change_only_inside_zones_and_only_when_it_lasts() {
        let still = grid(vec![100; 16]);
        let mut moved = vec![100; 16];
        moved[0] = 200; // top-left cell
        let moved = grid(moved);
        let mut whole = warmed(MotionSettings::default());
        assert!(!whole.detect(&still));
        assert!(!whole.detect(&moved), "one picture is not motion");
        assert!(whole.detect(&moved), "two running are");
        assert!(!whole.detect(&still));

        let mut bottom = warmed(MotionSettings {
            sensitivity: 100,
            zones: vec![Zone {
                x: 0.0,
                y: 0.5,
                width: 1.0,
                height: 0.5,
            }],
        });
        for _ in 0..3 {
            assert!(!bottom.detect(&moved), "change outside the zone is ignored");
        }
    }

    #[test]
    fn sensitivity_sets_the_step_that_counts() {
        let b = grid(vec![120; 16]);
        let mut low = warmed(MotionSettings {
            sensitivity: 1,
            zones: vec![],
        });
        assert!(!low.detect(&b) && !low.detect(&b));
        let mut high = warmed(MotionSettings {
            sensitivity: 100,
            zones: vec![],
        });
        assert!(!high.detect(&b) && high.detect(&b));
    }

    #[test]
    fn a_cell_that_flickers_by_itself_is_learnt_and_what_stays_fades_in() {
        // A clock on the picture: one cell flickers between two values from the start.
        let mut d = MotionDetector::new(MotionSettings::default());
        let flicker = |i: usize| {
            let mut cells = vec![100; 16];
            cells[5] = if i.is_multiple_of(2) { 60 } else { 160 };
            grid(cells)
        };
        for i in 0..600 {
            assert!(!d.detect(&flicker(i)), "picture {i}");
        }
        // Something arrives and stays: motion, then, within half a minute at 15 pictures a
        // second, part of the scene.
        let mut stays = vec![100; 16];
        stays[10] = 220;
        stays[11] = 220;
        let (mut first, mut last) = (None, None);
        for i in 0..600 {
            let mut cells = stays.clone();
            cells[5] = flicker(i).cells[5];
            if d.detect(&grid(cells)) {
                first.get_or_insert(i);
                last = Some(i);
            }
        }
        assert_eq!(first, Some(1), "seen at the second picture");
        assert!(last.is_some_and(|l| l < 450), "faded in: {last:?}");
    }
}
