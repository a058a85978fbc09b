use super::boxes::*;
use super::moov::{TrackBox, ftyp, moov};
use super::read::split_nals;
use super::*;

// x264 baseline 1280x720 (see h264.rs) and a matching picture parameter set.
const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
const AUD: [u8; 2] = [0x09, 0xf0];

fn idr(n: u8) -> Vec<u8> {
    vec![0x65, 0x88, 0x84, n]
}

fn slice(n: u8) -> Vec<u8> {
    vec![0x41, 0x9a, n, 0x7f, n]
}

/// Twelve access units with key frames every five, uneven durations, an access unit
/// delimiter, an SEI and a two-slice picture; `pts` gives B-frame style offsets.
fn clip(pts: bool) -> Vec<AccessUnit> {
    let mut aus = Vec::new();
    let mut dts = 0u64;
    for i in 0..12u8 {
        let nals = match i {
            0 => vec![SPS.to_vec(), PPS.to_vec(), vec![0x06, 5, 1, 0x80], idr(i)],
            5 => vec![AUD.to_vec(), SPS.to_vec(), PPS.to_vec(), idr(i)],
            10 => vec![idr(i)],
            3 => vec![slice(i), vec![0x41, 0x40, i]],
            _ => vec![slice(i)],
        };
        let mut au = AccessUnit::new(dts, nals);
        if pts {
            au.pts_offset = [6000, 0, 3000, 9000][usize::from(i % 4)];
        }
        aus.push(au);
        dts += if i % 3 == 0 { 3003 } else { 3000 };
    }
    aus
}

/// What read returns for `aus` written out: parameter sets and delimiters gone from the
/// samples, then the SPS and PPS in front of every key frame.
fn expected(aus: &[AccessUnit]) -> Vec<AccessUnit> {
    aus.iter()
        .map(|au| {
            let mut nals: Vec<Vec<u8>> = au.picture_nals().map(<[u8]>::to_vec).collect();
            if au.keyframe {
                nals.splice(0..0, [SPS.to_vec(), PPS.to_vec()]);
            }
            AccessUnit { nals, ..au.clone() }
        })
        .collect()
}

#[test]
fn a_cut_starts_at_the_key_frame_before_and_reads_back_from_zero() {
    let whole = write(&clip(false), None).unwrap();
    // 21006 ticks falls in access unit 6; the key frame before it is 5, at 15006; 27009 is
    // where 9 starts.
    let (part, at) = cut(&whole, 21_006, 27_009).unwrap();
    assert_eq!(at, 15_006);
    let read_back = read(&part).unwrap();
    let want: Vec<AccessUnit> = expected(&clip(false))[5..9]
        .iter()
        .map(|au| AccessUnit {
            dts: au.dts - 15_006,
            ..au.clone()
        })
        .collect();
    assert_eq!(read_back.access_units, want);
    // Before the first key frame, and past the end: the whole clip from its first picture.
    let (all, at) = cut(&whole, 0, u64::MAX).unwrap();
    assert_eq!((at, read(&all).unwrap().access_units.len()), (0, 12));
    // An empty span at a key frame keeps that picture.
    let (one, _) = cut(&whole, 30_012, 30_012).unwrap();
    assert_eq!(read(&one).unwrap().access_units.len(), 1);
}

#[test]
fn head_then_samples_is_the_whole_file() {
    for pts in [false, true] {
        let aus = clip(pts);
        let samples: Vec<Sample> = aus
            .iter()
            .map(|au| Sample {
                track: TrackKind::Video,
                length: 0,
                dts: au.dts,
                pts_offset: au.pts_offset,
                keyframe: au.keyframe,
                size: sample_size(au).unwrap(),
            })
            .collect();
        let mut file = head(&samples, &VideoConfig::h264(&SPS, &PPS), None).unwrap();
        for (au, sample) in aus.iter().zip(&samples) {
            assert_eq!(append_sample(au, &mut file).unwrap(), sample.size);
        }
        assert_eq!(file, write(&aus, None).unwrap());
    }
    let mut late = Sample {
        track: TrackKind::Video,
        length: 0,
        dts: 0,
        pts_offset: 0,
        keyframe: false,
        size: 4,
    };
    assert_eq!(
        head(&[late], &VideoConfig::h264(&SPS, &PPS), None),
        Err(Mp4Error::FirstNotKeyframe)
    );
    late.keyframe = true;
    assert_eq!(
        head(&[late, late], &VideoConfig::h264(&SPS, &PPS), None),
        Err(Mp4Error::DtsNotIncreasing { index: 1 })
    );
    assert!(matches!(
        head(&[late], &VideoConfig::h264(&PPS, &PPS), None),
        Err(Mp4Error::Sps(_))
    ));
}

fn position(file: &[u8], kind: &[u8; 4]) -> usize {
    file.windows(4).position(|w| w == kind).unwrap() - 4
}

fn top_level(file: &[u8]) -> Vec<[u8; 4]> {
    Boxes::new(file).map(|b| b.unwrap().kind).collect()
}

fn stbl(file: &[u8]) -> &[u8] {
    let moov = child(file, "moov").unwrap().unwrap();
    let path = ["trak", "mdia", "minf", "stbl"];
    path.iter()
        .fold(moov, |body, kind| require(body, kind).unwrap())
}

#[test]
fn round_trip_preserves_every_access_unit() {
    for pts in [false, true] {
        let aus = clip(pts);
        let file = write(&aus, None).unwrap();
        assert_eq!(
            top_level(&file),
            [*b"ftyp", *b"moov", *b"mdat"],
            "fast start: moov before mdat"
        );
        assert_eq!(child(stbl(&file), "ctts").unwrap().is_some(), pts);
        let video = read(&file).unwrap();
        assert_eq!((video.width, video.height), (1280, 720));
        assert_eq!(
            (
                video.config.sps(),
                video.config.parameter_sets()[1].as_slice()
            ),
            (&SPS[..], &PPS[..])
        );
        assert_eq!(video.access_units, expected(&aus));
        // What read returns writes back to the same file.
        assert_eq!(write(&video.access_units, None).unwrap(), file);
    }
}

#[test]
fn writes_the_boxes_players_expect() {
    let file = write(&clip(false), None).unwrap();
    assert_eq!(&file[..32], b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41");
    let stbl = stbl(&file);
    // Durations: 3003, 3000, 3000 repeating, the last repeated once more.
    let stts = require(stbl, "stts").unwrap();
    let mut c = Cursor::new(stts);
    c.skip(4, "").unwrap();
    let mut runs = Vec::new();
    for _ in 0..c.u32("").unwrap() {
        runs.push((c.u32("").unwrap(), c.u32("").unwrap()));
    }
    let mut expect = Vec::new();
    for _ in 0..4 {
        expect.extend([(1, 3003), (2, 3000)]);
    }
    expect.pop();
    expect.push((2, 3000));
    assert_eq!(runs, expect);
    let stss = require(stbl, "stss").unwrap();
    assert_eq!(
        stss,
        [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 11]
    );
    // The one chunk starts right after the mdat header.
    let stco = require(stbl, "stco").unwrap();
    let mdat = position(&file, b"mdat");
    assert_eq!(stco[8..], u32::try_from(mdat + 8).unwrap().to_be_bytes());
    let avcc = &file[position(&file, b"avcC") + 8..];
    assert_eq!(avcc[..8], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 10]);
    // tkhd: enabled and in movie; 1280x720 in 16.16 at its end.
    let moov = child(&file, "moov").unwrap().unwrap();
    let tkhd = require(require(moov, "trak").unwrap(), "tkhd").unwrap();
    assert_eq!(tkhd[..4], [0, 0, 0, 3]);
    assert_eq!(tkhd[tkhd.len() - 8..], [5, 0, 0, 0, 2, 0xd0, 0, 0]);
}

#[test]
fn single_sample_lasts_a_fifteenth_of_a_second() {
    let au = AccessUnit::new(777, vec![SPS.to_vec(), PPS.to_vec(), idr(1)]);
    let file = write(std::slice::from_ref(&au), None).unwrap();
    let stts = require(stbl(&file), "stts").unwrap();
    assert_eq!(stts[4..], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x17, 0x70]);
    let video = read(&file).unwrap();
    assert_eq!(video.access_units.len(), 1);
    assert_eq!(video.access_units[0].dts, 0, "times start at zero");
    assert_eq!(
        video.access_units[0].nals,
        [SPS.to_vec(), PPS.to_vec(), idr(1)]
    );
}

#[test]
fn write_refuses_what_it_cannot_store() {
    assert_eq!(write(&[], None), Err(Mp4Error::Empty));
    let aus = clip(false);
    assert_eq!(write(&aus[1..], None), Err(Mp4Error::FirstNotKeyframe));
    let without = |kind: u8| {
        let mut aus = clip(false);
        for au in &mut aus {
            au.nals.retain(|n| nal_type(n) != kind);
        }
        write(&aus, None)
    };
    assert_eq!(
        without(nal::SPS),
        Err(Mp4Error::MissingParameterSet("sequence"))
    );
    assert_eq!(
        without(nal::PPS),
        Err(Mp4Error::MissingParameterSet("picture"))
    );
    let mut same = clip(false);
    same[4].dts = same[3].dts;
    assert_eq!(
        write(&same, None),
        Err(Mp4Error::DtsNotIncreasing { index: 4 })
    );
    let mut back = clip(false);
    back[7].dts = 1;
    assert_eq!(
        write(&back, None),
        Err(Mp4Error::DtsNotIncreasing { index: 7 })
    );
    let mut bad_sps = clip(false);
    bad_sps[0].nals[0] = vec![0x67, 0x42];
    assert!(matches!(write(&bad_sps, None), Err(Mp4Error::Sps(_))));
    let mut gap = clip(false);
    gap[1].dts = 1 << 40;
    assert_eq!(
        write(&gap[..2], None),
        Err(Mp4Error::TooLarge("gap between decode times"))
    );
    let mut late = clip(false);
    late[2].pts_offset = u32::MAX;
    assert_eq!(write(&late, None), Err(Mp4Error::TooLarge("pts_offset")));
}

#[test]
fn every_truncation_is_refused_without_panic() {
    for pts in [false, true] {
        let file = write(&clip(pts), None).unwrap();
        for len in 0..file.len() {
            assert!(read(&file[..len]).is_err(), "length {len} was accepted");
        }
    }
}

#[test]
fn corrupted_bytes_never_panic() {
    let file = write(&clip(true), None).unwrap();
    for i in 0..file.len() {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = file.clone();
            bad[i] = v;
            let _ = read(&bad);
            bad[i] ^= file[i].wrapping_add(1);
            let _ = read(&bad);
        }
    }
}

#[test]
fn samples_outside_the_file_are_refused() {
    let file = write(&clip(false), None).unwrap();
    let stco = position(&file, b"stco");
    let mdat = position(&file, b"mdat");
    // Shift the chunk by one byte: the last sample then ends one past the file.
    let mut bad = file.clone();
    let shifted = u32::try_from(mdat + 9).unwrap();
    bad[stco + 16..stco + 20].copy_from_slice(&shifted.to_be_bytes());
    assert_eq!(read(&bad), Err(Mp4Error::SampleOutOfRange { index: 11 }));
    bad[stco + 16..stco + 20].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(read(&bad), Err(Mp4Error::SampleOutOfRange { index: 0 }));
    // Sizes that add up to more than the file are refused before anything is placed.
    let stsz = position(&file, b"stsz");
    let mut big = file.clone();
    big[stsz + 20..stsz + 24].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(read(&big), Err(Mp4Error::Malformed(_))));
    // A fixed sample size claiming MAX_SAMPLES samples.
    let mut many = file;
    many[stsz + 12..stsz + 16].copy_from_slice(&1u32.to_be_bytes());
    many[stsz + 16..stsz + 20].copy_from_slice(&MAX_SAMPLES.to_be_bytes());
    assert!(read(&many).is_err());
}

#[test]
fn fragmented_files_are_refused() {
    let config = VideoConfig::h264(&SPS, &PPS);
    let empty = TrackBox::video(&config, Default::default()).unwrap();
    let mut file = ftyp().unwrap();
    file.extend(moov(&[empty], Some(0)).unwrap());
    assert_eq!(read(&file), Err(Mp4Error::Empty));
    boxed(&mut file, b"moof", |o| {
        full_box(o, b"mfhd", 0, 0, |o| {
            o.u32(1);
            Ok(())
        })
    })
    .unwrap();
    boxed(&mut file, b"mdat", |o| {
        o.extend_from_slice(&[0, 0, 0, 4]);
        o.extend_from_slice(&idr(0));
        Ok(())
    })
    .unwrap();
    assert_eq!(read(&file), Err(Mp4Error::Fragmented));
    assert_eq!(
        Mp4Error::Fragmented.to_string(),
        "fragmented MP4 is not supported"
    );
    // moof alone, without moov.
    let moof = position(&file, b"moof");
    assert_eq!(read(&file[moof..]), Err(Mp4Error::Fragmented));
}

#[test]
fn reads_large_and_open_ended_mdat_headers() {
    let aus = clip(false);
    let file = write(&aus, None).unwrap();
    let mdat = position(&file, b"mdat");
    // size 0: to the end of the file.
    let mut open = file.clone();
    open[mdat..mdat + 4].copy_from_slice(&[0; 4]);
    assert_eq!(read(&open).unwrap().access_units, expected(&aus));
    // size 1 with a 64-bit largesize: eight more header bytes, so the chunk moves.
    let payload = &file[mdat + 8..];
    let mut large = file[..mdat].to_vec();
    large.extend_from_slice(&1u32.to_be_bytes());
    large.extend_from_slice(b"mdat");
    large.extend_from_slice(&(u64::try_from(payload.len()).unwrap() + 16).to_be_bytes());
    large.extend_from_slice(payload);
    let stco = position(&large, b"stco");
    let offset = u32::try_from(mdat + 16).unwrap();
    large[stco + 16..stco + 20].copy_from_slice(&offset.to_be_bytes());
    assert_eq!(read(&large).unwrap().access_units, expected(&aus));
}

#[test]
fn reads_optional_and_alternative_tables() {
    // Without stss (renamed to a free box), every sample is a key frame.
    let aus = clip(false);
    let file = write(&aus, None).unwrap();
    let mut no_stss = file.clone();
    let stss = position(&file, b"stss");
    no_stss[stss + 4..stss + 8].copy_from_slice(b"free");
    let video = read(&no_stss).unwrap();
    assert!(video.access_units.iter().all(|au| au.keyframe));
    assert_eq!(
        video.access_units[1].nals[..2],
        [SPS.to_vec(), PPS.to_vec()]
    );

    // Fixed sample size: the table after it is then ignored.
    let same: Vec<AccessUnit> = (0..4u8)
        .map(|i| {
            let nals = if i == 0 {
                vec![SPS.to_vec(), PPS.to_vec(), idr(i)]
            } else {
                vec![vec![0x41, 0x9a, i, i]]
            };
            AccessUnit::new(u64::from(i) * 6000, nals)
        })
        .collect();
    let mut file = write(&same, None).unwrap();
    let stsz = position(&file, b"stsz");
    file[stsz + 12..stsz + 16].copy_from_slice(&8u32.to_be_bytes());
    file[stsz + 20..stsz + 36].fill(0xee);
    assert_eq!(read(&file).unwrap().access_units, expected(&same));

    // ctts version 1 with a negative offset: all presentation times move up together.
    let mut aus = clip(false)[..3].to_vec();
    for (au, pts) in aus.iter_mut().zip([3000, 0, 6000]) {
        au.pts_offset = pts;
    }
    let mut file = write(&aus, None).unwrap();
    let ctts = position(&file, b"ctts");
    file[ctts + 8] = 1;
    file[ctts + 20..ctts + 24].copy_from_slice(&(-3000i32).to_be_bytes());
    let offsets: Vec<u32> = read(&file)
        .unwrap()
        .access_units
        .iter()
        .map(|au| au.pts_offset)
        .collect();
    assert_eq!(offsets, [0, 3000, 9000]);
}

#[test]
fn converts_other_timescales() {
    // 15360 ticks per second (what ffmpeg picks for 15 fps): 1024 ticks = 6000 at 90 kHz.
    let aus: Vec<AccessUnit> = clip(true)
        .into_iter()
        .enumerate()
        .map(|(i, mut au)| {
            au.dts = 6000 * u64::try_from(i).unwrap();
            au.pts_offset = if i % 2 == 0 { 12_000 } else { 0 };
            au
        })
        .collect();
    let mut file = write(&aus, None).unwrap();
    let mdhd = position(&file, b"mdhd");
    file[mdhd + 20..mdhd + 24].copy_from_slice(&15_360u32.to_be_bytes());
    let stts = position(&file, b"stts");
    file[stts + 20..stts + 24].copy_from_slice(&1024u32.to_be_bytes());
    let ctts = position(&file, b"ctts");
    let entries = u32::from_be_bytes(file[ctts + 12..ctts + 16].try_into().unwrap());
    for e in 0..usize::try_from(entries).unwrap() {
        let at = ctts + 20 + 8 * e;
        if file[at..at + 4] != [0; 4] {
            file[at..at + 4].copy_from_slice(&2048u32.to_be_bytes());
        }
    }
    assert_eq!(read(&file).unwrap().access_units, expected(&aus));
}

#[test]
fn splits_every_nal_length_size() {
    let sample = [0, 2, 0x41, 1, 0, 3, 0x41, 0, 0, 0, 1, 0x41];
    assert_eq!(
        split_nals(&sample, 2).unwrap(),
        [vec![0x41, 1], vec![0x41, 0, 0], vec![0x41]]
    );
    assert_eq!(
        split_nals(&[2, 0x65, 1, 0, 1, 0x41], 1).unwrap(),
        [vec![0x65, 1], vec![0x41]],
        "zero-length units are dropped"
    );
    assert_eq!(
        split_nals(&[0, 0, 0, 5, 0x65], 4),
        Err(Mp4Error::Malformed("NAL unit overruns its sample"))
    );
    assert_eq!(
        split_nals(&[0, 0, 0], 4),
        Err(Mp4Error::Truncated("NAL unit length"))
    );
}

#[test]
fn refuses_files_without_h264_video() {
    assert_eq!(read(&[]), Err(Mp4Error::NoMovie));
    assert_eq!(read(&ftyp().unwrap()), Err(Mp4Error::NoMovie));
    let file = write(&clip(false), None).unwrap();
    let mut sound = file.clone();
    let hdlr = position(&file, b"hdlr");
    sound[hdlr + 16..hdlr + 20].copy_from_slice(b"soun");
    assert_eq!(read(&sound), Err(Mp4Error::NoVideoTrack));
    let mut hevc = file.clone();
    // The sample entry, not the ftyp brand of the same name.
    let stsd = position(&file, b"stsd");
    let avc1 = stsd + position(&file[stsd..], b"avc1");
    hevc[avc1 + 4..avc1 + 8].copy_from_slice(b"hvc1");
    assert_eq!(read(&hevc), Err(Mp4Error::NoVideoTrack));
    // A box claiming more than its container holds.
    let mut over = file;
    let moov = position(&over, b"moov");
    over[moov..moov + 4].copy_from_slice(&u32::MAX.to_be_bytes());
    assert_eq!(
        read(&over),
        Err(Mp4Error::Malformed("box overruns its container"))
    );
}

/// Sound for [`clip`]: AAC-LC 16 kHz frames (5760 ticks) from `start`, one in `lost` left out,
/// each stated `jitter` ticks late on odd frames (a camera clock's rounding).
fn sound(start: u64, lost: Option<u64>, jitter: u64) -> Audio {
    Audio {
        config: AudioConfig::Aac(AacConfig::low_complexity(16_000, 1).unwrap()),
        frames: (0..6u64)
            .filter(|i| Some(*i) != lost)
            .map(|i| AudioFrame {
                pts: start + i * 5760 + if i % 2 == 1 { jitter } else { 0 },
                data: vec![0x21, 0x10, u8::try_from(i).unwrap(), 0x05, 0x07],
            })
            .collect(),
    }
}

/// The bodies of every `trak` in `file`.
fn traks(file: &[u8]) -> Vec<&[u8]> {
    let moov = child(file, "moov").unwrap().unwrap();
    Boxes::new(moov)
        .map(Result::unwrap)
        .filter(|b| &b.kind == b"trak")
        .map(|b| b.body)
        .collect()
}

#[test]
fn sound_interleaves_with_the_pictures_and_reads_back_on_their_clock() {
    let aus = clip(false);
    let audio = sound(900, None, 0);
    let file = write(&aus, Some(&audio)).unwrap();
    let back = read(&file).unwrap();
    assert_eq!(back.access_units, expected(&aus));
    assert_eq!(
        back.audio.as_ref(),
        Some(&audio),
        "the same frames at the same times"
    );

    let [video, sound_trak] = traks(&file)[..] else {
        panic!("two tracks");
    };
    assert!(child(video, "edts").unwrap().is_none());
    // The sound starts 10 ms after the first picture: an empty edit, then the media.
    let elst = require(require(sound_trak, "edts").unwrap(), "elst").unwrap();
    assert_eq!(
        elst[4..],
        [
            [0, 0, 0, 2],
            [0, 0, 0, 10],
            [0xff; 4],
            [0, 1, 0, 0],
            [0, 0, 1, 0x80],
            [0; 4],
            [0, 1, 0, 0]
        ]
        .concat()
    );
    let stbl = |trak| {
        require(
            require(require(trak, "mdia").unwrap(), "minf").unwrap(),
            "stbl",
        )
        .unwrap()
    };
    // Interleaved by time: a chunk each time the track changes.
    let chunks = |trak| {
        u32::from_be_bytes(
            require(stbl(trak), "stco").unwrap()[4..8]
                .try_into()
                .unwrap(),
        )
    };
    assert!(chunks(video) > 3 && chunks(sound_trak) > 3);
    // Every sound frame lasts 1024 samples; there is no stss (every frame is a sync sample).
    let stts = require(stbl(sound_trak), "stts").unwrap();
    assert_eq!(
        stts[4..],
        [[0, 0, 0, 1], [0, 0, 0, 6], [0, 0, 4, 0]].concat()
    );
    assert!(child(stbl(sound_trak), "stss").unwrap().is_none());
}

#[test]
fn sound_stays_on_its_grid_and_keeps_its_gaps() {
    let aus = clip(false);
    // A few ticks of rounding are not a gap; a lost frame is.
    let back = read(&write(&aus, Some(&sound(0, Some(3), 40))).unwrap()).unwrap();
    assert_eq!(back.audio, Some(sound(0, Some(3), 0)));
}

#[test]
fn sound_that_cannot_be_placed_is_refused() {
    let aus = clip(false);
    let mut early = sound(0, None, 0);
    early.frames[0].pts = 0;
    let mut aus_late = aus.clone();
    for au in &mut aus_late {
        au.dts += 100;
    }
    assert_eq!(
        write(&aus_late, Some(&early)),
        Err(Mp4Error::Audio("sound starts before the first picture"))
    );
    let frame = Sample::audio(&early.frames[0], &early.config).unwrap();
    let picture = Sample::video(&aus[0]).unwrap();
    assert_eq!(
        head(&[picture, frame], &VideoConfig::h264(&SPS, &PPS), None),
        Err(Mp4Error::Audio("sound without its configuration"))
    );
    let mut back = sound(0, None, 0);
    back.frames.swap(2, 3);
    assert_eq!(
        write(&aus, Some(&back)),
        Err(Mp4Error::DtsNotIncreasing { index: 3 })
    );
}

#[test]
fn a_cut_keeps_the_sound_of_its_span() {
    let whole = write(&clip(false), Some(&sound(900, None, 0))).unwrap();
    // From the key frame at 15006 to the picture at 27009: the frames starting in between.
    let (part, at) = cut(&whole, 21_006, 27_009).unwrap();
    assert_eq!(at, 15_006);
    let audio = read(&part).unwrap().audio.unwrap();
    let times: Vec<u64> = audio.frames.iter().map(|f| f.pts).collect();
    // 900 + 3 * 5760 = 18180 and 23940, less the part's start; the edit list has millisecond
    // precision.
    assert_eq!(times.len(), 2);
    assert!(times[0].abs_diff(18_180 - 15_006) < 90 && times[1] - times[0] == 5760);
}

#[test]
fn every_truncation_of_a_file_with_sound_is_refused_without_panic() {
    let file = write(&clip(false), Some(&sound(900, None, 0))).unwrap();
    for len in 0..file.len() {
        let _ = read(&file[..len]);
    }
    let mut bytes = file.clone();
    for i in 0..bytes.len() {
        bytes[i] ^= 0xff;
        let _ = read(&bytes);
        bytes[i] ^= 0xff;
    }
}

#[test]
fn opus_sound_round_trips_with_its_configuration() {
    let aus = clip(false);
    // 20 ms CELT packets (1800 ticks), one of them two frames long (40 ms).
    let config = AudioConfig::Opus(OpusConfig::new(1, 312, 16_000).unwrap());
    let mut pts = 0;
    let frames = (0..10u8)
        .map(|i| {
            let data = if i == 4 {
                vec![(31 << 3) | 1, i, i]
            } else {
                vec![31 << 3, i]
            };
            let frame = AudioFrame { pts, data };
            pts += if i == 4 { 3600 } else { 1800 };
            frame
        })
        .collect();
    let audio = Audio { config, frames };
    let file = write(&aus, Some(&audio)).unwrap();
    assert_eq!(read(&file).unwrap().audio, Some(audio));
    let [_, sound_trak] = traks(&file)[..] else {
        panic!("two tracks");
    };
    let stbl = require(
        require(require(sound_trak, "mdia").unwrap(), "minf").unwrap(),
        "stbl",
    )
    .unwrap();
    let stts = require(stbl, "stts").unwrap();
    assert_eq!(
        stts[4..],
        [
            [0, 0, 0, 3],
            [0, 0, 0, 4],
            [0, 0, 3, 0xc0],
            [0, 0, 0, 1],
            [0, 0, 7, 0x80],
            [0, 0, 0, 5],
            [0, 0, 3, 0xc0]
        ]
        .concat()
    );
}

#[test]
fn a_sound_track_without_samples_is_no_sound() {
    // What write makes of sound with no frames (no sound track), and a file with an empty one,
    // read alike: found by fuzzing, where the two differed.
    let aus = clip(false);
    let silent = Audio {
        config: AudioConfig::Opus(OpusConfig::new(1, 308, 16_000).unwrap()),
        frames: Vec::new(),
    };
    let file = write(&aus, Some(&silent)).unwrap();
    assert_eq!(traks(&file).len(), 1);
    assert_eq!(read(&file).unwrap().audio, None);
}
