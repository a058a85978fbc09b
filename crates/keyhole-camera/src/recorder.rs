//! Turning a stream of access units and triggers into event clips: a pre-roll ring buffer that
//! always starts at a key frame, recording from the trigger until the post-roll has passed since
//! the last trigger (or the clip reaches its longest length), and a cool-down after each motion
//! clip. Pure apart from where the footage goes: times are the stream's own 90 kHz clock.
//!
//! A doorbell press or external trigger is its own event, never merged into a motion event: it
//! is announced at once (see [`announced_at_once`]), naming the clip being recorded.

use std::collections::VecDeque;

use keyhole_core::ObjectId;
use keyhole_core::event::EventKind;
use keyhole_media::{AccessUnit, TIMESCALE};
use rand_core::OsRng;

use crate::footage::Footage;
use crate::sound::Sound;

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

/// Whether events of `kind` are sealed as soon as they happen, before the video that shows
/// them is finished (someone is at the door now), rather than when they end.
#[must_use]
pub fn announced_at_once(kind: EventKind) -> bool {
    matches!(kind, EventKind::Doorbell | EventKind::External)
}

/// The pictures from the last key frame among `pictures` on, to decode the newest one.
pub(crate) fn from_last_key_frame<'a>(
    pictures: impl Iterator<Item = &'a AccessUnit>,
) -> Vec<AccessUnit> {
    let mut out = Vec::new();
    for au in pictures {
        if au.keyframe {
            out.clear();
        }
        out.push(au.clone());
    }
    out
}

/// A finished event clip.
#[derive(Debug)]
pub struct Clip<F> {
    /// Its object id, chosen when it began (a press announced at once names it).
    pub object_id: ObjectId,
    /// What started it (a doorbell press outranks motion in the same picture).
    pub kind: EventKind,
    /// Stream time of the trigger.
    pub triggered_at: u64,
    /// Stream time of the first picture, a key frame.
    pub starts_at: u64,
    /// Stream time of the last picture.
    pub ends_at: u64,
    /// The pictures.
    pub footage: F,
    /// A JPEG of the picture where it began, when one was made while recording.
    pub thumbnail: Option<Vec<u8>>,
}

impl<F> Clip<F> {
    /// Length in milliseconds, from the first to the last picture.
    #[must_use]
    pub fn duration_ms(&self) -> u32 {
        u32::try_from(self.ends_at.saturating_sub(self.starts_at) * 1000 / u64::from(TIMESCALE))
            .unwrap_or(u32::MAX)
    }
}

#[derive(Debug)]
struct Recording<F> {
    object_id: ObjectId,
    kind: EventKind,
    triggered_at: u64,
    last_trigger: u64,
    starts_at: u64,
    ends_at: u64,
    footage: F,
    thumbnail: Option<Vec<u8>>,
}

impl<F> Recording<F> {
    fn into_clip(self) -> Clip<F> {
        Clip {
            object_id: self.object_id,
            kind: self.kind,
            triggered_at: self.triggered_at,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            footage: self.footage,
            thumbnail: self.thumbnail,
        }
    }
}

/// The clip cutter. The pre-roll ring is always in memory (it is short); a clip's pictures and
/// sound go to footage made by `new_footage` as they arrive.
pub struct Recorder<F> {
    timing: ClipTiming,
    new_footage: Box<dyn FnMut() -> F + Send>,
    ring: VecDeque<AccessUnit>,
    /// The sound since the ring's first picture.
    ring_sound: VecDeque<Sound>,
    recording: Option<Recording<F>>,
    quiet_until: u64,
    pending: Option<EventKind>,
    now: u64,
}

impl<F> std::fmt::Debug for Recorder<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("timing", &self.timing)
            .field("ring", &self.ring.len())
            .field("recording", &self.recording.is_some())
            .finish_non_exhaustive()
    }
}

fn rank(kind: EventKind) -> u8 {
    match kind {
        EventKind::Doorbell => 3,
        EventKind::External => 2,
        _ => 1,
    }
}

impl<F: Footage> Recorder<F> {
    /// A recorder with `timing`, keeping each clip's pictures in a fresh `new_footage()`.
    #[must_use]
    pub fn new(timing: ClipTiming, new_footage: impl FnMut() -> F + Send + 'static) -> Self {
        Self {
            timing,
            new_footage: Box::new(new_footage),
            ring: VecDeque::new(),
            ring_sound: VecDeque::new(),
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
    pub fn push(&mut self, au: AccessUnit) -> Option<Clip<F>> {
        self.now = au.dts;
        let mut finished = None;
        if let Some(rec) = &mut self.recording {
            // A later trigger extends the clip; it does not change what the clip's event is (a
            // press is an event of its own, announced at once).
            if self.pending.take().is_some() {
                rec.last_trigger = au.dts;
            }
            let over = au.dts >= rec.last_trigger + ticks(self.timing.post_roll_ms)
                || au.dts >= rec.starts_at + ticks(self.timing.max_clip_ms);
            if over {
                self.quiet_until = au.dts + ticks(self.timing.cooldown_ms);
                finished = self.recording.take().map(Recording::into_clip);
            } else {
                rec.footage.append(&au);
                rec.ends_at = au.dts;
            }
        }
        // The ring follows the stream even while recording: the end of one clip is the
        // pre-roll of a next one that follows closely.
        self.remember(au);
        // A trigger waits for the first key frame when the ring is empty (a battery camera
        // just woken).
        if self.recording.is_none()
            && let (Some(first), Some(last)) = (self.ring.front(), self.ring.back())
            && let Some(kind) = self.pending.take()
        {
            let mut footage = (self.new_footage)();
            for au in &self.ring {
                footage.append(au);
            }
            for sound in &self.ring_sound {
                footage.append_sound(sound);
            }
            self.recording = Some(Recording {
                object_id: ObjectId::random(&mut OsRng),
                kind,
                triggered_at: self.now,
                last_trigger: self.now,
                starts_at: first.dts,
                ends_at: last.dts,
                footage,
                thumbnail: None,
            });
        }
        finished
    }

    /// Takes the next frame of sound: into the clip being recorded, and into the pre-roll
    /// while there is one. Sound from before the clip's (or the ring's) first picture is left
    /// out: a clip starts with its key frame.
    pub fn push_sound(&mut self, sound: Sound) {
        if let Some(rec) = &mut self.recording
            && sound.frame.pts >= rec.starts_at
        {
            rec.footage.append_sound(&sound);
        }
        if self
            .ring
            .front()
            .is_some_and(|first| sound.frame.pts >= first.dts)
        {
            self.ring_sound.push_back(sound);
        }
    }

    /// The clip being recorded, if any.
    #[must_use]
    pub fn current_clip(&self) -> Option<ObjectId> {
        self.recording.as_ref().map(|r| r.object_id)
    }

    /// The pictures from the last key frame to the newest, to decode the newest.
    #[must_use]
    pub fn since_key_frame(&self) -> Vec<AccessUnit> {
        from_last_key_frame(self.ring.iter())
    }

    /// Whether a clip is being recorded that has no thumbnail yet.
    #[must_use]
    pub fn wants_thumbnail(&self) -> bool {
        self.recording
            .as_ref()
            .is_some_and(|r| r.thumbnail.is_none())
    }

    /// Gives the clip being recorded its thumbnail (the picture that started it, decoded by
    /// the caller).
    pub fn set_thumbnail(&mut self, jpeg: Vec<u8>) {
        if let Some(rec) = &mut self.recording {
            rec.thumbnail = Some(jpeg);
        }
    }

    /// Forgets the pre-roll (a battery camera going back to sleep has no video until woken).
    pub fn forget(&mut self) {
        self.ring.clear();
        self.ring_sound.clear();
    }

    /// Ends the clip being recorded, if any (the camera is stopping).
    pub fn finish(&mut self) -> Option<Clip<F>> {
        self.recording.take().map(Recording::into_clip)
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
        if let Some(first) = self.ring.front() {
            while self
                .ring_sound
                .front()
                .is_some_and(|s| s.frame.pts < first.dts)
            {
                self.ring_sound.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 pictures a second (9,000 ticks apart), a key frame every 10.
    fn au(i: u64) -> AccessUnit {
        AccessUnit {
            codec: keyhole_media::Codec::H264,
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
        let mut r = Recorder::new(timing(), Vec::new);
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
        assert_eq!(clip.footage[0].dts, au(30).dts);
        assert!(clip.footage[0].keyframe);
        // Post-roll 3 s after the trigger at picture 55: ends at picture 85, exclusive.
        assert_eq!(ended_at, 85);
        assert_eq!(clip.footage.last().unwrap().dts, au(84).dts);
        assert_eq!(clip.kind, EventKind::Motion);
        assert_eq!(clip.triggered_at, au(55).dts);
        let dts: Vec<u64> = clip.footage.iter().map(|a| a.dts).collect();
        assert!(dts.windows(2).all(|w| w[1] == w[0] + 9000), "no gaps");
    }

    #[test]
    fn a_press_extends_a_motion_clip_without_becoming_its_event_and_cooldown_holds_motion() {
        let mut r = Recorder::new(timing(), Vec::new);
        for i in 0..20 {
            r.push(au(i));
        }
        r.trigger(EventKind::Motion);
        let mut clips = Vec::new();
        let mut pressed_in = None;
        for i in 20..200 {
            if i == 40 {
                r.trigger(EventKind::Doorbell);
                pressed_in = r.current_clip();
                // The press is announced at once from the pictures since the last key frame.
                let since = r.since_key_frame();
                assert!(since[0].keyframe && since[0].dts == au(30).dts);
                assert_eq!(since.last().unwrap().dts, au(39).dts);
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
        assert_eq!(
            clips[0].1.kind,
            EventKind::Motion,
            "the press is its own event"
        );
        assert_eq!(pressed_in, Some(clips[0].1.object_id), "it names this clip");
        assert_eq!(clips[1].1.kind, EventKind::External);
        assert!(clips[1].1.footage[0].keyframe);
        assert_ne!(clips[1].1.object_id, clips[0].1.object_id);
        // The second clip follows closely, so its pre-roll reaches back into the first.
        assert!(clips[1].1.starts_at < clips[0].1.ends_at);
    }

    #[test]
    fn a_trigger_before_any_key_frame_waits_for_one() {
        let mut r = Recorder::new(
            ClipTiming {
                pre_roll_ms: 0,
                ..timing()
            },
            Vec::new,
        );
        r.trigger(EventKind::Doorbell);
        for i in 5..10 {
            assert!(r.push(au(i)).is_none());
            assert!(!r.is_recording());
        }
        r.push(au(10));
        assert!(r.is_recording());
        let clip = (11..100).find_map(|i| r.push(au(i))).unwrap();
        assert_eq!(clip.footage[0].dts, au(10).dts);
        assert_eq!(clip.kind, EventKind::Doorbell);
    }

    #[test]
    fn clips_stop_at_the_longest_length() {
        let mut r = Recorder::new(timing(), Vec::new);
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
