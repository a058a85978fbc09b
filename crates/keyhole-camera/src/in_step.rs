//! Sound held back until its pictures have come. A camera encodes its pictures more slowly than
//! its sound, so a frame of sound often arrives before the picture of its time: handed on at
//! once, it would run past the end of the clip that picture ends, and be missing from the start
//! of the next (or from a pre-roll that had no key frame yet). Here a frame of sound waits
//! until a picture at or after its time has come, and the clip cutters then see sound after the
//! pictures it goes with, as they expect.

use std::collections::VecDeque;

use keyhole_media::TIMESCALE;

use crate::sound::Sound;

/// The most sound held while no picture comes (a source whose pictures stopped): the oldest is
/// dropped beyond it.
const MOST_HELD_TICKS: u64 = 5 * TIMESCALE as u64;

/// Sound waiting for a picture at or after its time.
#[derive(Debug, Default)]
pub struct InStep {
    held: VecDeque<Sound>,
    /// The newest picture's time, and the one before it.
    newest: Option<u64>,
    before: Option<u64>,
}

impl InStep {
    /// Takes a frame of sound: returns it at once when a picture at or after its time has
    /// come, else holds it.
    pub fn sound(&mut self, sound: Sound) -> Option<Sound> {
        if self.newest.is_some_and(|dts| sound.frame.pts < dts) && self.held.is_empty() {
            return Some(sound);
        }
        let pts = sound.frame.pts;
        self.held.push_back(sound);
        while self
            .held
            .front()
            .is_some_and(|s| s.frame.pts + MOST_HELD_TICKS < pts)
        {
            self.held.pop_front();
        }
        None
    }

    /// A picture at stream time `dts` has come: returns the sound before it, to be handed on
    /// before the picture.
    pub fn picture(&mut self, dts: u64) -> Vec<Sound> {
        self.before = self.newest.replace(dts);
        self.release(dts)
    }

    /// The source has stopped: returns the sound held that goes with its last picture (up to
    /// one picture's length after it); the rest has no picture and is dropped.
    pub fn finish(&mut self) -> Vec<Sound> {
        let until = match (self.before, self.newest) {
            (Some(before), Some(newest)) => newest + newest.saturating_sub(before),
            _ => 0,
        };
        let out = self.release(until);
        self.held.clear();
        out
    }

    /// Forgets what is held (the source was lost: what comes after the gap starts afresh).
    pub fn forget(&mut self) {
        self.held.clear();
        self.newest = None;
        self.before = None;
    }

    fn release(&mut self, until: u64) -> Vec<Sound> {
        let ready = self.held.iter().take_while(|s| s.frame.pts < until).count();
        self.held.drain(..ready).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use keyhole_media::audio::{AudioConfig, AudioFrame};
    use keyhole_media::opus::OpusConfig;

    use super::*;

    fn sound(pts: u64) -> Sound {
        Sound {
            config: Arc::new(AudioConfig::Opus(OpusConfig::new(1, 312, 16_000).unwrap())),
            frame: AudioFrame {
                pts,
                data: vec![0xfc],
            },
        }
    }

    fn times(sounds: &[Sound]) -> Vec<u64> {
        sounds.iter().map(|s| s.frame.pts).collect()
    }

    #[test]
    fn sound_after_its_picture_goes_on_at_once() {
        let mut in_step = InStep::default();
        assert!(in_step.picture(6000).is_empty());
        assert_eq!(in_step.sound(sound(0)).map(|s| s.frame.pts), Some(0));
        assert_eq!(in_step.sound(sound(1800)).map(|s| s.frame.pts), Some(1800));
    }

    #[test]
    fn sound_before_its_picture_waits_for_it() {
        let mut in_step = InStep::default();
        for pts in [0, 1800, 3600, 5400, 7200] {
            assert!(in_step.sound(sound(pts)).is_none(), "no picture yet");
        }
        assert_eq!(times(&in_step.picture(3600)), [0, 1800]);
        assert!(
            in_step.sound(sound(9000)).is_none(),
            "ahead of the pictures"
        );
        assert_eq!(times(&in_step.picture(9000)), [3600, 5400, 7200]);
        // Sound keeps its order: a frame behind the pictures waits while one before it is held.
        assert!(in_step.sound(sound(8000)).is_none());
        assert_eq!(times(&in_step.picture(10_000)), [9000, 8000]);
        assert!(in_step.sound(sound(9500)).is_some(), "its picture has come");
    }

    #[test]
    fn the_last_picture_keeps_its_own_sound_only() {
        let mut in_step = InStep::default();
        in_step.picture(0);
        in_step.picture(6000);
        for pts in [6000, 9000, 12_000] {
            assert!(in_step.sound(sound(pts)).is_none());
        }
        assert_eq!(times(&in_step.finish()), [6000, 9000]);
        assert!(in_step.picture(20_000).is_empty(), "the rest was dropped");
    }

    #[test]
    fn sound_without_pictures_is_bounded() {
        let mut in_step = InStep::default();
        for i in 0..1000 {
            assert!(in_step.sound(sound(i * 1800)).is_none());
        }
        let held = in_step.picture(u64::MAX);
        assert_eq!(held.len(), 251, "five seconds and the newest frame");
    }
}
