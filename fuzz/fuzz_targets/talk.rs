//! `talk::TalkHeader::decode` on the first bytes (what decodes encodes back to the same bytes),
//! then `talk::TalkOpener::open_frame` on the rest (split by the frames' own length fields)
//! against the fixture talk session: never panics, indexes only go up, nothing opens after the
//! final frame, no packet is longer than Opus allows; and a packet made of the input, sealed by
//! the fixture's talker, opens to the same bytes.
#![no_main]

use keyhole_core::envelope::Suite;
use keyhole_core::live_request::LiveChallenge;
use keyhole_core::talk::{Spoken, TalkHeader, TalkOpener, TalkSealer, HEADER_LEN, MAX_PACKET};
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{split_frames, viewing, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = TalkHeader::decode(&data[..data.len().min(HEADER_LEN)]) {
        assert_eq!(&header.encode()[..], &data[..HEADER_LEN], "not canonical");
    }
    let challenge = LiveChallenge::from_secret(&[0x3c; 32]);
    let mut talker = TalkSealer::with_ephemeral(
        CAMERA_ID,
        1,
        &challenge.public(),
        &viewing(),
        Suite::ChaCha20Poly1305,
        &[0x4d; 32],
        [0x2e; 16],
    )
    .expect("the fixture challenge is usable");
    let header = *talker.header();
    let open = || {
        TalkOpener::new(&header, &CAMERA_ID, 1, &viewing().public(), &[&challenge])
            .expect("the fixture header opens")
    };
    let mut camera = open();
    let (mut next, mut ended) = (0u64, false);
    for frame in split_frames(data, 64) {
        match camera.open_frame(frame) {
            Ok(heard) => {
                assert!(!ended, "a frame opened after the final frame");
                assert!(heard.index >= next);
                assert_eq!(heard.skipped, heard.index - next);
                assert!(heard.spoken.audio.len() <= MAX_PACKET);
                next = heard.index.saturating_add(1);
                ended = heard.last;
            }
            Err(_) => {}
        }
    }
    let spoken = Spoken {
        seen: Timestamp(7),
        since_ms: 3,
        audio: data[..data.len().min(MAX_PACKET)].to_vec(),
    };
    let sealed = talker.seal(&spoken, true).expect("a packet within the limit seals");
    let heard = open().open_frame(&sealed).expect("the talker's frame opens");
    assert!(heard.last);
    assert_eq!(heard.spoken, spoken);
});
