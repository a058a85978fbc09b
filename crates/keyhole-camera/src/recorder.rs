//! Turning a stream of access units and triggers into event clips: a pre-roll ring buffer that
//! always starts at a key frame, recording from the trigger until the post-roll has passed since
//! the last trigger (or the clip reaches its longest length), and a cool-down after each motion
//! clip. Pure: times are the stream's own 90 kHz clock.

use std::collections::VecDeque;

use keyhole_core::event::EventKind;
use keyhole_media::{AccessUnit, TIMESCALE};

/// Clip timing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClipTiming {
    /// Video kept from before the trigger, in milliseconds (rounded back to a key frame).
    pub pre_roll_ms: u32,
    /// Video kept after the last trigger, in milliseconds.
    pub post_roll_ms: u32,
    /// Longest clip, in milliseconds.
    pub max_clip_ms: u32,
    /// Motion is ignored for this long after a clip ends, in milliseconds (a doorbell press or
    /// an external trigger is not).
    pub cooldown_ms: u32,
}

impl Default for ClipTiming {
    fn default() -> Self {
        Self {
            pre_roll_ms: 5_000,
            post_roll_ms: 10_000,
            max_clip_ms: 60_000,
            cooldown_ms: 10_000,
        }
    }
}

fn ticks(ms: u32) -> u64 {
    u64::from(ms) * u64::from(TIMESCALE) / 1000
}

/// A finished event clip.
#[derive(Debug, Clone)]
pub struct Clip {
    /// What triggered it (a doorbell press outranks motion).
    pub kind: EventKind,
    /// Stream time of the trigger.
    pub triggered_at: u64,
    /// The pictures, starting with a key frame.
    pub access_units: Vec<AccessUnit>,
}

impl Clip {
    /// Stream time of the first picture.
    #[must_use]
    pub fn starts_at(&self) -> u64 {
        self.access_units.first().map_or(0, |a| a.dts)
    }

    /// Length in milliseconds, from the first to the last picture.
    #[must_use]
    pub fn duration_ms(&self) -> u32 {
        let end = self.access_units.last().map_or(0, |a| a.dts);
        u32::try_from(end.saturating_sub(self.starts_at()) * 1000 / u64::from(TIMESCALE))
            .unwrap_or(u32::MAX)
    }
}

#[derive(Debug)]
struct Recording {
    kind: EventKind,
    triggered_at: u64,
    last_trigger: u64,
    access_units: Vec<AccessUnit>,
}

/// The clip cutter.
#[derive(Debug)]
pub struct Recorder {
    timing: ClipTiming,
    ring: VecDeque<AccessUnit>,
    recording: Option<Recording>,
    quiet_until: u64,
    pending: Option<EventKind>,
    now: u64,
}

fn rank(kind: EventKind) -> u8 {
    match kind {
        EventKind::Doorbell => 3,
        EventKind::External => 2,
        _ => 1,
    }
}

impl Recorder {
    /// A recorder with `timing`.
    #[must_use]
    pub fn new(timing: ClipTiming) -> Self {
        Self {
            timing,
            ring: VecDeque::new(),
            recording: None,
            quiet_until: 0,
            pending: None,
            now: 0,
        }
    }

    /// Whether a clip is being recorded.
    #[must_use]
    pub fn is_recording(&self) -> bool {
        self.recording.is_some()
    }

    /// Registers a trigger at the current stream time; it takes effect with the next picture.
    /// Motion during the cool-down is ignored; returns whether the trigger counted.
    pub fn trigger(&mut self, kind: EventKind) -> bool {
        if kind == EventKind::Motion && self.recording.is_none() && self.now < self.quiet_until {
            return false;
        }
        self.pending = Some(match self.pending {
            Some(p) if rank(p) >= rank(kind) => p,
            _ => kind,
        });
        true
    }

    /// Takes the next picture; returns a clip when this picture ends one.
    pub fn push(&mut self, au: AccessUnit) -> Option<Clip> {
        self.now = au.dts;
        let mut finished = None;
        if let Some(rec) = &mut self.recording {
            if let Some(kind) = self.pending.take() {
                rec.last_trigger = au.dts;
                if rank(kind) > rank(rec.kind) {
                    rec.kind = kind;
                }
            }
            let start = rec.access_units.first().map_or(au.dts, |a| a.dts);
            let over = au.dts >= rec.last_trigger + ticks(self.timing.post_roll_ms)
                || au.dts >= start + ticks(self.timing.max_clip_ms);
            if over {
                self.quiet_until = au.dts + ticks(self.timing.cooldown_ms);
                // The end of this clip is the pre-roll of a next one that follows closely.
                let keep_from = au.dts.saturating_sub(ticks(self.timing.pre_roll_ms));
                let tail = rec
                    .access_units
                    .iter()
                    .rposition(|a| a.keyframe && a.dts <= keep_from)
                    .or_else(|| rec.access_units.iter().rposition(|a| a.keyframe))
                    .unwrap_or(0);
                self.ring = rec.access_units[tail..].iter().cloned().collect();
                finished = self.recording.take().map(|rec| Clip {
                    kind: rec.kind,
                    triggered_at: rec.triggered_at,
                    access_units: rec.access_units,
                });
            } else {
                rec.access_units.push(au);
                return None;
            }
        }
        self.remember(au);
        // A trigger waits for the first key frame when the ring is empty (a battery camera
        // just woken).
        if !self.ring.is_empty()
            && let Some(kind) = self.pending.take()
        {
            self.recording = Some(Recording {
                kind,
                triggered_at: self.now,
                last_trigger: self.now,
                access_units: self.ring.drain(..).collect(),
            });
        }
        finished
    }

    /// Forgets the pre-roll (a battery camera going back to sleep has no video until woken).
    pub fn forget(&mut self) {
        self.ring.clear();
    }

    /// Ends the clip being recorded, if any (the camera is stopping).
    pub fn finish(&mut self) -> Option<Clip> {
        self.recording.take().map(|rec| Clip {
            kind: rec.kind,
            triggered_at: rec.triggered_at,
            access_units: rec.access_units,
        })
    }

    /// Adds a picture to the pre-roll ring, which starts at a key frame and holds no more than
    /// needed to reach back `pre_roll_ms`.
    fn remember(&mut self, au: AccessUnit) {
        if self.ring.is_empty() && !au.keyframe {
            return;
        }
        let now = au.dts;
        self.ring.push_back(au);
        let keep_from = now.saturating_sub(ticks(self.timing.pre_roll_ms));
        // Drop the oldest group of pictures while the next key frame still reaches back far
        // enough.
        while let Some(next_key) = self.ring.iter().skip(1).position(|a| a.keyframe) {
            if self.ring[next_key + 1].dts > keep_from {
                break;
            }
            self.ring.drain(..=next_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 pictures a second (9,000 ticks apart), a key frame every 10.
    fn au(i: u64) -> AccessUnit {
        AccessUnit {
            dts: i * 9000,
            pts_offset: 0,
            keyframe: i.is_multiple_of(10),
            nals: vec![vec![if i.is_multiple_of(10) { 0x65 } else { 0x41 }, 0x80]],
        }
    }

    fn timing() -> ClipTiming {
        ClipTiming {
            pre_roll_ms: 2_000,
            post_roll_ms: 3_000,
            max_clip_ms: 20_000,
            cooldown_ms: 5_000,
        }
    }

    #[test]
    fn clip_has_pre_roll_from_a_key_frame_and_post_roll() {
        let mut r = Recorder::new(timing());
        for i in 0..55 {
            assert!(r.push(au(i)).is_none());
        }
        assert!(r.trigger(EventKind::Motion));
        let mut clip = None;
        for i in 55..200 {
            if let Some(c) = r.push(au(i)) {
                clip = Some((i, c));
                break;
            }
        }
        let (ended_at, clip) = clip.unwrap();
        // Trigger at picture 55 (5.5 s): pre-roll 2 s reaches 3.5 s; the key frame at or
        // before it is picture 30.
        assert_eq!(clip.access_units[0].dts, au(30).dts);
        assert!(clip.access_units[0].keyframe);
        // Post-roll 3 s after the trigger at picture 55: ends at picture 85, exclusive.
        assert_eq!(ended_at, 85);
        assert_eq!(clip.access_units.last().unwrap().dts, au(84).dts);
        assert_eq!(clip.kind, EventKind::Motion);
        assert_eq!(clip.triggered_at, au(55).dts);
        let dts: Vec<u64> = clip.access_units.iter().map(|a| a.dts).collect();
        assert!(dts.windows(2).all(|w| w[1] == w[0] + 9000), "no gaps");
    }

    #[test]
    fn retrigger_extends_doorbell_outranks_motion_and_cooldown_holds_motion() {
        let mut r = Recorder::new(timing());
        for i in 0..20 {
            r.push(au(i));
        }
        r.trigger(EventKind::Motion);
        let mut clips = Vec::new();
        for i in 20..200 {
            if i == 40 {
                r.trigger(EventKind::Doorbell);
            }
            if let Some(c) = r.push(au(i)) {
                clips.push((i, c));
                // Motion right after a clip is in the cool-down.
                if clips.len() == 1 {
                    assert!(!r.trigger(EventKind::Motion));
                    assert!(r.trigger(EventKind::External));
                }
            }
        }
        assert_eq!(
            clips[0].0, 70,
            "extended to 3 s after the press at picture 40"
        );
        assert_eq!(clips[0].1.kind, EventKind::Doorbell);
        assert_eq!(clips[1].1.kind, EventKind::External);
        assert!(clips[1].1.access_units[0].keyframe);
        // The second clip follows closely, so its pre-roll reaches back into the first.
        assert!(clips[1].1.starts_at() < clips[0].1.access_units.last().unwrap().dts);
    }

    #[test]
    fn a_trigger_before_any_key_frame_waits_for_one() {
        let mut r = Recorder::new(ClipTiming {
            pre_roll_ms: 0,
            ..timing()
        });
        r.trigger(EventKind::Doorbell);
        for i in 5..10 {
            assert!(r.push(au(i)).is_none());
            assert!(!r.is_recording());
        }
        r.push(au(10));
        assert!(r.is_recording());
        let clip = (11..100).find_map(|i| r.push(au(i))).unwrap();
        assert_eq!(clip.access_units[0].dts, au(10).dts);
        assert_eq!(clip.kind, EventKind::Doorbell);
    }

    #[test]
    fn clips_stop_at_the_longest_length() {
        let mut r = Recorder::new(timing());
        r.push(au(0));
        let mut ended = None;
        for i in 1..400 {
            r.trigger(EventKind::External);
            if let Some(c) = r.push(au(i)) {
                ended = Some(c);
                break;
            }
        }
        assert_eq!(ended.unwrap().duration_ms(), 19_900);
    }
}
