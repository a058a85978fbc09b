//! The camera's configuration file (TOML). Every field has a default, so an empty file is a
//! working synthetic camera; unknown fields are refused so a typo is an error, not a silently
//! ignored setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::recorder::ClipTiming;
use crate::source::SourceConfig;
use crate::video::motion::MotionSettings;

/// How the camera is powered, which decides how it records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// Mains power: watches all the time, detects motion itself, keeps a pre-roll.
    #[default]
    Wired,
    /// Battery: asleep until woken by a trigger (its motion sensor, the doorbell button),
    /// then records, seals, uploads and sleeps again. No pre-roll, no picture analysis, no
    /// requests while asleep.
    Battery,
}

/// What a camera records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordMode {
    /// Everything, in back-to-back segments, with events marked on them (wired default).
    Continuous,
    /// Only event clips, with pre- and post-roll (battery default).
    Events,
}

/// Recording, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordConfig {
    /// `continuous` or `events`; by default continuous when wired, events on battery.
    pub mode: Option<RecordMode>,
    /// Longest continuous segment, in seconds (a segment also ends at the first key frame after
    /// an event, so its video arrives promptly).
    pub segment_s: f32,
}

impl Default for RecordConfig {
    fn default() -> Self {
        Self {
            mode: None,
            segment_s: 60.0,
        }
    }
}

/// Which cipher suite to seal with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SuiteChoice {
    /// AES-256-GCM where the CPU has AES instructions, else ChaCha20-Poly1305.
    #[default]
    Auto,
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    Chacha20Poly1305,
}

/// Clip timing in seconds, as written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClipConfig {
    /// Seconds of video before the trigger (event clips on wired cameras; rounded back to a key
    /// frame).
    pub pre_roll_s: f32,
    /// Seconds of video after the last trigger.
    pub post_roll_s: f32,
    /// Longest clip, in seconds.
    pub max_s: f32,
    /// Seconds after a clip during which motion starts no new clip.
    pub cooldown_s: f32,
    /// Whether to seal a thumbnail of the triggering picture with each event. Making one
    /// decodes video: about 28 MB of memory for a moment at 1080p, and CPU time a battery
    /// pays for.
    pub thumbnail: bool,
}

impl Default for ClipConfig {
    fn default() -> Self {
        Self {
            pre_roll_s: 5.0,
            post_roll_s: 10.0,
            max_s: 60.0,
            cooldown_s: 10.0,
            thumbnail: true,
        }
    }
}

#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn ms(seconds: f32) -> u32 {
    (seconds.clamp(0.0, 3600.0) * 1000.0) as u32
}

impl ClipConfig {
    /// The timing in milliseconds.
    #[must_use]
    pub fn timing(&self) -> ClipTiming {
        ClipTiming {
            pre_roll_ms: ms(self.pre_roll_s),
            post_roll_ms: ms(self.post_roll_s),
            max_clip_ms: ms(self.max_s).max(1000),
            cooldown_ms: ms(self.cooldown_s),
        }
    }
}

/// Motion detection, as written in the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MotionConfig {
    /// Whether the camera looks for motion (wired only).
    pub enabled: bool,
    /// Sensitivity and zones.
    #[serde(flatten)]
    pub settings: MotionSettings,
}

impl Default for MotionConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            settings: MotionSettings::default(),
        }
    }
}

/// Upload retry timing.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// First wait after a failed upload, in seconds; doubled after each failure.
    pub retry_min_s: f32,
    /// Longest wait between attempts, in seconds.
    pub retry_max_s: f32,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self {
            retry_min_s: 1.0,
            retry_max_s: 60.0,
        }
    }
}

/// How often the camera signs its head (PROTOCOL.md §8.3) while online, and how long devices
/// wait for the next before they show the camera as silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeadsConfig {
    /// Seconds between heads sent on their own (every upload carries one too); by default
    /// 300 when wired, 86 400 (daily) on battery.
    pub interval_s: Option<u32>,
    /// Seconds after a head until devices call the camera silent; by default three intervals
    /// when wired (15 minutes), the interval and 4 hours on battery (28 hours).
    pub silent_after_s: Option<u32>,
}

/// Where talk-back sound from the owner's devices goes (PROTOCOL.md §8.4): raw signed 16-bit
/// little-endian mono PCM at `rate`, to a file, a command, or both. With neither, the camera
/// does not listen for talk.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TalkConfig {
    /// A file the sound is appended to.
    pub file: Option<PathBuf>,
    /// A command started (by `sh -c`) for each talk session, the sound on its standard input:
    /// for example `aplay -q -t raw -f S16_LE -c 1 -r 48000`.
    pub command: Option<String>,
    /// Samples a second: 8000, 12000, 16000, 24000 or 48000.
    pub rate: u32,
}

impl Default for TalkConfig {
    fn default() -> Self {
        Self {
            file: None,
            command: None,
            rate: 48_000,
        }
    }
}

impl TalkConfig {
    /// Whether talk-back has somewhere to go.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.file.is_some() || self.command.is_some()
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the camera keeps its identity, verified record, chain and spool.
    pub state_dir: PathBuf,
    /// `wired` or `battery`.
    pub profile: Profile,
    /// `auto`, `aes-256-gcm` or `chacha20-poly1305`.
    pub suite: SuiteChoice,
    /// Largest spool, in megabytes; the oldest sealed objects are dropped (and counted) past it.
    pub spool_mb: u64,
    /// Loopback address of the control endpoint (status, doorbell, external trigger).
    pub control: SocketAddr,
    /// The video source.
    pub source: SourceConfig,
    /// What to record.
    pub record: RecordConfig,
    /// Clip and event timing.
    pub clip: ClipConfig,
    /// Motion detection.
    pub motion: MotionConfig,
    /// Upload retries.
    pub upload: UploadConfig,
    /// The camera's signed heads.
    pub heads: HeadsConfig,
    /// Where talk-back sound goes.
    pub talk: TalkConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            state_dir: PathBuf::from("keyhole-camera-state"),
            profile: Profile::default(),
            suite: SuiteChoice::default(),
            spool_mb: 512,
            control: SocketAddr::from(([127, 0, 0, 1], 8787)),
            source: SourceConfig::default(),
            record: RecordConfig::default(),
            clip: ClipConfig::default(),
            motion: MotionConfig::default(),
            upload: UploadConfig::default(),
            heads: HeadsConfig::default(),
            talk: TalkConfig::default(),
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    path: String,
    message: String,
}

impl Config {
    /// Reads `path`, or the defaults when `path` is `None`.
    ///
    /// # Errors
    /// An unreadable file, bad TOML, an unknown field, or a value out of range.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let Some(path) = path else {
            return Ok(Self::default());
        };
        let err = |message: String| ConfigError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(format!("the configuration file could not be read ({e})")))?;
        let config: Self = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        config.check().map_err(err)?;
        Ok(config)
    }

    /// Checks values that parse but make no sense.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), String> {
        if !self.control.ip().is_loopback() {
            return Err(format!(
                "control = {}: the control endpoint takes unauthenticated triggers, so it must be on loopback",
                self.control
            ));
        }
        if self.profile == Profile::Battery && self.record.mode == Some(RecordMode::Continuous) {
            return Err("record.mode = \"continuous\" needs a wired camera".into());
        }
        if self.record.segment_s < 1.0 {
            return Err("record.segment_s must be at least 1".into());
        }
        if self.spool_mb == 0 {
            return Err("spool_mb must be at least 1".into());
        }
        if !(1..=100).contains(&self.motion.settings.sensitivity) {
            return Err("motion.sensitivity must be 1 to 100".into());
        }
        if self.upload.retry_min_s <= 0.0 || self.upload.retry_max_s < self.upload.retry_min_s {
            return Err("upload.retry_min_s must be > 0 and <= upload.retry_max_s".into());
        }
        if self.head_interval_s() == 0 || self.silent_after_s() <= self.head_interval_s() {
            return Err(
                "heads.interval_s must be at least 1 and below heads.silent_after_s".into(),
            );
        }
        if !keyhole_sound::OPUS_RATES.contains(&self.talk.rate) {
            return Err("talk.rate must be 8000, 12000, 16000, 24000 or 48000".into());
        }
        Ok(())
    }

    /// Seconds between heads sent on their own.
    #[must_use]
    pub fn head_interval_s(&self) -> u32 {
        self.heads.interval_s.unwrap_or(match self.profile {
            Profile::Wired => 300,
            Profile::Battery => 86_400,
        })
    }

    /// Seconds after a head until devices call the camera silent.
    #[must_use]
    pub fn silent_after_s(&self) -> u32 {
        self.heads.silent_after_s.unwrap_or(match self.profile {
            Profile::Wired => self.head_interval_s().saturating_mul(3),
            Profile::Battery => self.head_interval_s().saturating_add(4 * 3600),
        })
    }

    /// What this camera records.
    #[must_use]
    pub fn record_mode(&self) -> RecordMode {
        self.record.mode.unwrap_or(match self.profile {
            Profile::Wired => RecordMode::Continuous,
            Profile::Battery => RecordMode::Events,
        })
    }

    /// Segment length in milliseconds.
    #[must_use]
    pub fn segment_ms(&self) -> u32 {
        ms(self.record.segment_s)
    }

    /// The cipher suite to seal with.
    #[must_use]
    pub fn suite(&self) -> keyhole_core::envelope::Suite {
        use keyhole_core::envelope::Suite;
        match self.suite {
            SuiteChoice::Auto => crate::agent::best_suite(),
            SuiteChoice::Aes256Gcm => Suite::Aes256Gcm,
            SuiteChoice::Chacha20Poly1305 => Suite::ChaCha20Poly1305,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults_and_typos_are_refused() {
        assert_eq!(toml::from_str::<Config>("").unwrap(), Config::default());
        let config: Config = toml::from_str(
            r#"
            profile = "battery"
            suite = "chacha20-poly1305"
            [source]
            kind = "rtsp"
            url = "rtsp://127.0.0.1:8554/door"
            [motion]
            sensitivity = 80
            zones = [{ x = 0.0, y = 0.5, width = 1.0, height = 0.5 }]
            "#,
        )
        .unwrap();
        assert_eq!(config.profile, Profile::Battery);
        assert_eq!(config.record_mode(), RecordMode::Events);
        assert_eq!(Config::default().record_mode(), RecordMode::Continuous);
        let continuous_battery: Config =
            toml::from_str("profile = \"battery\"\n[record]\nmode = \"continuous\"").unwrap();
        assert!(continuous_battery.check().unwrap_err().contains("wired"));
        assert_eq!(config.motion.settings.zones.len(), 1);
        config.check().unwrap();
        assert!(toml::from_str::<Config>("profil = \"wired\"").is_err());
        assert!(toml::from_str::<Config>("[clip]\npreroll_s = 3").is_err());
        let open = Config {
            control: "0.0.0.0:8787".parse().unwrap(),
            ..Config::default()
        };
        assert!(open.check().unwrap_err().contains("loopback"));
    }
}
