//! Continuous recording (wired cameras): the stream is cut into back-to-back segments that
//! start at key frames, each sealed as a clip, and events are marks on them: an event names the
//! segment where it began, its start and its length, and is sealed right after that segment.
//! A doorbell press or external trigger is announced at once instead, by the caller, naming
//! [`Segmenter::current_clip`]; its mark (a press opens one when no event is open) only keeps
//! the segment going through its post-roll. A segment ends after `segment_ms`, or at the first key frame after an event ends, so the
//! owner gets the event's video promptly. Pure apart from where the footage goes: times are the
//! stream's own 90 kHz clock.

use keyhole_core::ObjectId;
use keyhole_core::event::EventKind;
use keyhole_media::{AccessUnit, TIMESCALE};

use crate::footage::Footage;
use crate::recorder::ClipTiming;
use crate::sound::Sound;

fn ticks(ms: u32) -> u64 {
    u64::from(ms) * u64::from(TIMESCALE) / 1000
}

/// A finished segment: a clip with an id chosen when it began (events name it before it ends).
#[derive(Debug)]
pub struct Segment<F> {
    /// The clip's object id.
    pub object_id: ObjectId,
    /// Stream time of the first picture, a key frame.
    pub starts_at: u64,
    /// The pictures.
    pub footage: F,
}

/// A finished event mark.
#[derive(Debug, Clone)]
pub struct Mark {
    /// What triggered it.
    pub kind: EventKind,
    /// Stream time of the first trigger.
    pub started_at: u64,
    /// Stream time when it ended (post-roll after the last trigger, or the longest length).
    pub ended_at: u64,
    /// The segment where it began.
    pub clip: ObjectId,
    /// The pictures from the last key frame up to the trigger, for the thumbnail.
    pub thumbnail_from: Vec<AccessUnit>,
    /// A JPEG of the picture where it began, when one was made while recording.
    pub thumbnail: Option<Vec<u8>>,
}

/// What the segmenter hands on, in the order it must be sealed.
#[derive(Debug)]
pub enum Output<F> {
    /// A segment of continuous video.
    Segment(Segment<F>),
    /// An event mark (after the segment it names).
    Mark(Mark),
}

#[derive(Debug)]
struct Open {
    kind: EventKind,
    started_at: u64,
    last_trigger: u64,
    clip: ObjectId,
    thumbnail_from: Vec<AccessUnit>,
    thumbnail: Option<Vec<u8>>,
}

impl Open {
    fn into_mark(self, ended_at: u64) -> Mark {
        Mark {
            kind: self.kind,
            started_at: self.started_at,
            ended_at,
            clip: self.clip,
            thumbnail_from: self.thumbnail_from,
            thumbnail: self.thumbnail,
        }
    }
}

/// The continuous recorder. The pictures since the last key frame are kept in memory for a
/// thumbnail; a segment's pictures go to footage made by `new_footage` as they arrive.
pub struct Segmenter<F> {
    segment_ms: u32,
    timing: ClipTiming,
    new_footage: Box<dyn FnMut() -> F + Send>,
    current: Option<Segment<F>>,
    since_key: Vec<AccessUnit>,
    event: Option<Open>,
    ended: Vec<Mark>,
    quiet_until: u64,
    now: u64,
}

impl<F> std::fmt::Debug for Segmenter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segmenter")
            .field("segment_ms", &self.segment_ms)
            .field("in_event", &self.event.is_some())
            .finish_non_exhaustive()
    }
}

impl<F: Footage> Segmenter<F> {
    /// A segmenter cutting every `segment_ms`, with the event timing of `timing` (its
    /// pre-roll is not used: the video before an event is in the segment already), keeping
    /// each segment's pictures in a fresh `new_footage()`.
    #[must_use]
    pub fn new(
        segment_ms: u32,
        timing: ClipTiming,
        new_footage: impl FnMut() -> F + Send + 'static,
    ) -> Self {
        Self {
            segment_ms: segment_ms.max(1000),
            timing,
            new_footage: Box::new(new_footage),
            current: None,
            since_key: Vec::new(),
            event: None,
            ended: Vec::new(),
            quiet_until: 0,
            now: 0,
        }
    }

    /// Whether an event is open.
    #[must_use]
    pub fn in_event(&self) -> bool {
        self.event.is_some()
    }

    /// Marks a trigger at the current stream time. Motion during the cool-down after an event
    /// is ignored; returns whether the trigger counted. Before the first key frame there is no
    /// segment to mark, and the trigger is ignored.
    pub fn trigger(&mut self, kind: EventKind) -> bool {
        let Some(segment) = &self.current else {
            return false;
        };
        if let Some(open) = &mut self.event {
            // It extends the open event, whose kind stays: a press is an event of its own,
            // announced at once by the caller.
            open.last_trigger = self.now;
            return true;
        }
        if kind == EventKind::Motion && self.now < self.quiet_until {
            return false;
        }
        self.event = Some(Open {
            kind,
            started_at: self.now,
            last_trigger: self.now,
            clip: segment.object_id,
            thumbnail_from: self.since_key.clone(),
            thumbnail: None,
        });
        true
    }

    /// Takes the next picture; returns what is ready to seal. `new_id` names the next segment.
    pub fn push(&mut self, au: AccessUnit, new_id: impl FnOnce() -> ObjectId) -> Vec<Output<F>> {
        self.now = au.dts;
        if let Some(open) = &self.event {
            let over = au.dts >= open.last_trigger + ticks(self.timing.post_roll_ms)
                || au.dts >= open.started_at + ticks(self.timing.max_clip_ms);
            if over && let Some(open) = self.event.take() {
                self.quiet_until = au.dts + ticks(self.timing.cooldown_ms);
                self.ended.push(open.into_mark(au.dts));
            }
        }
        let mut out = Vec::new();
        if au.keyframe
            && let Some(segment) = &self.current
            && (au.dts >= segment.starts_at + ticks(self.segment_ms) || !self.ended.is_empty())
        {
            out.extend(self.current.take().map(Output::Segment));
            out.extend(self.ended.drain(..).map(Output::Mark));
        }
        if self.current.is_none() && au.keyframe {
            self.current = Some(Segment {
                object_id: new_id(),
                starts_at: au.dts,
                footage: (self.new_footage)(),
            });
        }
        if let Some(segment) = &mut self.current {
            segment.footage.append(&au);
            if au.keyframe {
                self.since_key.clear();
            }
            self.since_key.push(au);
        }
        out
    }

    /// Takes the next frame of sound, into the segment being recorded. Sound from before the
    /// segment's first picture (a frame that arrived after the cut) is left out.
    pub fn push_sound(&mut self, sound: &Sound) {
        if let Some(segment) = &mut self.current
            && sound.frame.pts >= segment.starts_at
        {
            segment.footage.append_sound(sound);
        }
    }

    /// The segment being recorded, if any.
    #[must_use]
    pub fn current_clip(&self) -> Option<ObjectId> {
        self.current.as_ref().map(|s| s.object_id)
    }

    /// The pictures from the last key frame to the newest, to decode the newest.
    #[must_use]
    pub fn since_key_frame(&self) -> Vec<AccessUnit> {
        crate::recorder::from_last_key_frame(self.since_key.iter())
    }

    /// Whether an event is open that has no thumbnail yet.
    #[must_use]
    pub fn wants_thumbnail(&self) -> bool {
        self.event.as_ref().is_some_and(|e| e.thumbnail.is_none())
    }

    /// Gives the open event its thumbnail (a picture right after the trigger, decoded by the
    /// caller).
    pub fn set_thumbnail(&mut self, jpeg: Vec<u8>) {
        if let Some(open) = &mut self.event {
            open.thumbnail = Some(jpeg);
        }
    }

    /// Ends everything (the camera is stopping): the open segment, then every event, an open
    /// one ending now.
    pub fn finish(&mut self) -> Vec<Output<F>> {
        if let Some(open) = self.event.take() {
            self.ended.push(open.into_mark(self.now));
        }
        let mut out: Vec<Output<F>> = self
            .current
            .take()
            .map(Output::Segment)
            .into_iter()
            .collect();
        out.extend(self.ended.drain(..).map(Output::Mark));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 10 pictures a second, a key frame every 10.
    fn au(i: u64) -> AccessUnit {
        AccessUnit {
            codec: keyhole_media::Codec::H264,
            dts: i * 9000,
            pts_offset: 0,
            keyframe: i.is_multiple_of(10),
            nals: vec![vec![if i.is_multiple_of(10) { 0x65 } else { 0x41 }, 0x80]],
        }
    }

    fn segmenter() -> Segmenter<Vec<AccessUnit>> {
        Segmenter::new(
            5_000,
            ClipTiming {
                pre_roll_ms: 0,
                post_roll_ms: 1_500,
                max_clip_ms: 20_000,
                cooldown_ms: 3_000,
            },
            Vec::new,
        )
    }

    fn run(
        s: &mut Segmenter<Vec<AccessUnit>>,
        range: std::ops::Range<u64>,
        triggers: &[(u64, EventKind)],
        ids: &mut u8,
    ) -> Vec<Output<Vec<AccessUnit>>> {
        let mut out = Vec::new();
        for i in range {
            for (at, kind) in triggers {
                if *at == i {
                    s.trigger(*kind);
                }
            }
            out.extend(s.push(au(i), || {
                *ids += 1;
                ObjectId([*ids; 16])
            }));
        }
        out
    }

    #[test]
    fn segments_are_back_to_back_and_events_follow_their_segment() {
        let mut s = segmenter();
        let mut ids = 0;
        let out = run(
            &mut s,
            3..200,
            &[
                (20, EventKind::Motion),
                (24, EventKind::Motion),
                (30, EventKind::Motion),
            ],
            &mut ids,
        );
        let mut next_dts = au(10).dts;
        let mut segments = Vec::new();
        let mut marks = Vec::new();
        for o in &out {
            match o {
                Output::Segment(seg) => {
                    assert!(seg.footage[0].keyframe);
                    assert_eq!(seg.footage[0].dts, next_dts, "no gap, no overlap");
                    next_dts = seg.footage.last().unwrap().dts + 9000;
                    segments.push(seg.object_id);
                }
                Output::Mark(m) => {
                    assert!(segments.contains(&m.clip), "sealed after its segment");
                    marks.push(m);
                }
            }
        }
        // A trigger takes the time of the last picture seen. The event ended 1.5 s after the
        // last trigger, and the segment was cut at the next key frame (picture 50) instead of
        // running to 5 s.
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].started_at, au(19).dts);
        assert_eq!(marks[0].ended_at, au(44).dts);
        assert_eq!(marks[0].clip, ObjectId([1; 16]));
        assert!(marks[0].thumbnail_from[0].keyframe);
        assert_eq!(marks[0].thumbnail_from.last().unwrap().dts, au(19).dts);
        assert!(matches!(&out[0], Output::Segment(s) if s.footage.len() == 40));
        // Then 5-second segments.
        assert!(matches!(&out[2], Output::Segment(s) if s.footage.len() == 50));
        // Motion in the cool-down after an event (which ends at picture 214) marks nothing; a
        // doorbell does.
        let more = run(
            &mut s,
            200..300,
            &[
                (200, EventKind::Motion),
                (220, EventKind::Motion),
                (225, EventKind::Doorbell),
            ],
            &mut ids,
        );
        let kinds: Vec<EventKind> = more
            .iter()
            .filter_map(|o| match o {
                Output::Mark(m) => Some(m.kind),
                Output::Segment(_) => None,
            })
            .collect();
        assert_eq!(kinds, [EventKind::Motion, EventKind::Doorbell]);
        let rest = s.finish();
        assert!(matches!(rest.as_slice(), [Output::Segment(_)]));
    }

    #[test]
    fn a_press_during_motion_extends_it_and_stays_out_of_it() {
        let mut s = segmenter();
        let mut ids = 0;
        let out = run(
            &mut s,
            3..120,
            &[(20, EventKind::Motion), (30, EventKind::Doorbell)],
            &mut ids,
        );
        let marks: Vec<&Mark> = out
            .iter()
            .filter_map(|o| match o {
                Output::Mark(m) => Some(m),
                Output::Segment(_) => None,
            })
            .collect();
        assert_eq!(marks.len(), 1);
        assert_eq!(marks[0].kind, EventKind::Motion);
        // Extended to 1.5 s after the press (seen at picture 29).
        assert_eq!(marks[0].ended_at, au(44).dts);
    }

    #[test]
    fn stopping_ends_the_open_event_after_its_segment() {
        let mut s = segmenter();
        let mut ids = 0;
        run(&mut s, 0..12, &[(11, EventKind::External)], &mut ids);
        assert!(s.in_event());
        let out = s.finish();
        assert!(matches!(&out[0], Output::Segment(seg) if seg.object_id == ObjectId([1; 16])));
        assert!(matches!(&out[1], Output::Mark(m) if m.clip == ObjectId([1; 16])));
    }
}
