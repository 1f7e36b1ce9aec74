//! Logging set-up: one call that installs `tracing` for the whole process
//! from command-line options, an optional TOML logging config, and the
//! environment, the way the old toolkit's `logconf` did for Python logging.
//!
//! Precedence, most specific first:
//!
//! - the config file is `--log-config FILE` if given, else the file named by
//!   `PLUGHOST_LOG`, else none;
//! - levels come from `RUST_LOG` if it is set and valid, else from the config
//!   (`level` and the `[targets]` table), else from the options' default;
//! - the console format is `--log-format` if given, else the config's
//!   `format`, else text.
//!
//! Logs go to stderr (stdout is for command output), and optionally also to
//! a rotating file through `tracing-appender`. Logging must never stop the
//! host from starting: a missing or broken config file, a bad `RUST_LOG` or a
//! log directory that cannot be created each fall back to console logging
//! and produce one warning that says what was wrong. How the settings combine
//! is the pure function [`resolve`] (and [`effective_config`], which also
//! reads the file), so it is tested without installing a global subscriber.
//!
//! A config file looks like this:
//!
//! ```toml
//! level = "info"                  # default level for every target
//! format = "json"                 # console format: "text" or "json"
//!
//! [targets]                       # level per target (module path prefix)
//! "plughost::tracker" = "debug"
//! lapin = "warn"
//!
//! [file]                          # optional rotating log file
//! directory = "/var/log/plughost"
//! prefix = "plughost.log"         # file names: <prefix>.<date>
//! rotation = "daily"              # minutely, hourly, daily or never
//! max_files = 7                   # keep this many, delete older ones
//! format = "json"                 # file format: "text" (default) or "json"
//! ```
//!
//! ```
//! use plughost_cli::logging::{resolve, LogFormat, LoggingConfig, LoggingEnv, LoggingOptions};
//!
//! let config = LoggingConfig::from_toml("level = \"info\"\n[targets]\n\"plughost_proto\" = \"debug\"\n").unwrap();
//! let options = LoggingOptions { format: Some(LogFormat::Json), ..LoggingOptions::default() };
//! let env = LoggingEnv { plughost_log: None, rust_log: None };
//! let effective = resolve(&options, &env, Some(("logging.toml".into(), Ok(config))));
//! assert_eq!(effective.filter, "info,lapin=error,plughost_proto=debug");
//! assert_eq!(effective.console_format, LogFormat::Json);
//! assert!(effective.warnings.is_empty());
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Deserialize;
use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{self, RollingFileAppender};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// The environment variable that names a logging config file.
pub const CONFIG_ENV: &str = "PLUGHOST_LOG";
/// Libraries whose own records stay below the default level unless asked
/// for: lapin logs every message the broker returns at WARN with its raw
/// `BasicReturnMessage` dump, and plughost already turns returns into
/// errors that say what happened ("no service for route ...").
pub const QUIET_TARGETS: &[(&str, &str)] = &[("lapin", "error")];

/// The environment variable with level directives, as every `tracing` program reads it.
pub const FILTER_ENV: &str = "RUST_LOG";

/// Why a logging config could not be used, or logging not be installed.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The config file could not be read.
    #[error("cannot read logging config {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: std::io::Error,
    },
    /// The config is not valid TOML for a logging config.
    #[error("logging config is not valid: {reason}")]
    Parse {
        /// What the TOML parser objected to.
        reason: String,
    },
    /// A level is not one of trace, debug, info, warn, error, off.
    #[error("logging config: level {level:?} for {target} is not one of trace, debug, info, warn, error, off")]
    BadLevel {
        /// The target, or "the default level".
        target: String,
        /// The level as written.
        level: String,
    },
    /// A target name would not survive being written into a filter directive.
    #[error("logging config: target {target:?} is not a module path (no spaces, commas, '=' or brackets)")]
    BadTarget {
        /// The target as written.
        target: String,
    },
    /// A global subscriber is already installed in this process.
    #[error("logging is already initialised in this process: {reason}")]
    AlreadyInitialised {
        /// What `tracing` said.
        reason: String,
    },
}

/// How log records are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    /// `text` or `json`, so a CLI can take the format as a plain argument.
    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("log format {other:?} is not text or json")),
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Text => "text",
            Self::Json => "json",
        })
    }
}

/// When the log file starts a new file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Rotation {
    /// Every minute (for tests and very chatty debugging).
    Minutely,
    /// Every hour.
    Hourly,
    /// Every day.
    #[default]
    Daily,
    /// Never: one file that grows.
    Never,
}

/// The `[file]` table: an optional rotating log file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The directory the files go into; created if missing.
    pub directory: PathBuf,
    /// The file name prefix; the rotation appends the date.
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// When to start a new file.
    #[serde(default)]
    pub rotation: Rotation,
    /// How many files to keep; older ones are deleted. All are kept if unset.
    pub max_files: Option<usize>,
    /// The format of the file's records.
    #[serde(default)]
    pub format: LogFormat,
}

fn default_prefix() -> String {
    "plughost.log".to_owned()
}

/// A logging config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoggingConfig {
    /// The default level for every target.
    pub level: Option<String>,
    /// The console format.
    pub format: Option<LogFormat>,
    /// Levels per target (module path prefixes such as `plughost::rpc`).
    #[serde(default)]
    pub targets: BTreeMap<String, String>,
    /// An optional rotating log file.
    pub file: Option<FileConfig>,
}

impl LoggingConfig {
    /// Parses and checks a config: unknown keys, bad levels and target names
    /// that would corrupt the filter are all errors.
    pub fn from_toml(text: &str) -> Result<Self, LoggingError> {
        let config: Self = toml::from_str(text).map_err(|err| LoggingError::Parse {
            reason: err.message().to_owned(),
        })?;
        if let Some(level) = &config.level {
            check_level("the default level", level)?;
        }
        for (target, level) in &config.targets {
            let well_formed = !target.is_empty()
                && !target.contains(|c: char| {
                    c.is_whitespace() || matches!(c, ',' | '=' | '[' | ']' | '{' | '}')
                });
            if !well_formed {
                return Err(LoggingError::BadTarget {
                    target: target.clone(),
                });
            }
            check_level(target, level)?;
        }
        Ok(config)
    }

    /// Reads and parses the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, LoggingError> {
        let text = std::fs::read_to_string(path).map_err(|reason| LoggingError::Read {
            path: path.to_owned(),
            reason,
        })?;
        Self::from_toml(&text)
    }

    /// The filter directives this config asks for, on top of `default_level`.
    /// Targets in [`QUIET_TARGETS`] are held at their level unless the
    /// config names them.
    fn directives(&self, default_level: LevelFilter) -> String {
        let level = self
            .level
            .clone()
            .unwrap_or_else(|| default_level.to_string().to_lowercase());
        let quiet = QUIET_TARGETS
            .iter()
            .filter(|(target, _)| !self.targets.contains_key(*target))
            .map(|(target, level)| format!("{target}={level}"));
        std::iter::once(level.to_lowercase())
            .chain(quiet)
            .chain(
                self.targets
                    .iter()
                    .map(|(target, level)| format!("{target}={}", level.to_lowercase())),
            )
            .collect::<Vec<_>>()
            .join(",")
    }
}

fn check_level(target: &str, level: &str) -> Result<(), LoggingError> {
    LevelFilter::from_str(level)
        .map(drop)
        .map_err(|_| LoggingError::BadLevel {
            target: target.to_owned(),
            level: level.to_owned(),
        })
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggingOptions {
    /// `--log-format`, if given; it beats the config file's `format`.
    pub format: Option<LogFormat>,
    /// `--log-config FILE`, if given; it beats `PLUGHOST_LOG`.
    pub config_file: Option<PathBuf>,
    /// The level when neither `RUST_LOG` nor a config sets one. `warn` by
    /// default, so one-shot commands stay quiet; `plughost run` may pass `info`.
    pub default_level: LevelFilter,
}

impl Default for LoggingOptions {
    fn default() -> Self {
        Self {
            format: None,
            config_file: None,
            default_level: LevelFilter::WARN,
        }
    }
}

/// The environment's say, read once so that [`resolve`] stays pure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoggingEnv {
    /// `PLUGHOST_LOG`: a config file.
    pub plughost_log: Option<PathBuf>,
    /// `RUST_LOG`: filter directives.
    pub rust_log: Option<String>,
}

impl LoggingEnv {
    /// Reads `PLUGHOST_LOG` and `RUST_LOG`; empty values count as unset.
    pub fn from_process() -> Self {
        Self {
            plughost_log: std::env::var_os(CONFIG_ENV)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from),
            rust_log: std::env::var(FILTER_ENV)
                .ok()
                .filter(|value| !value.trim().is_empty()),
        }
    }
}

/// The settings logging will be installed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EffectiveLogging {
    /// `EnvFilter` directives, e.g. `info,plughost::rpc=debug`.
    pub filter: String,
    /// The console (stderr) format.
    pub console_format: LogFormat,
    /// The log file, if one is configured.
    pub file: Option<FileConfig>,
    /// The config file in use, if one was given and could be used.
    pub config_file: Option<PathBuf>,
    /// What went wrong on the way, each to be logged as one warning.
    pub warnings: Vec<String>,
}

/// Which config file the options and environment point at, if any.
pub fn config_path(options: &LoggingOptions, env: &LoggingEnv) -> Option<PathBuf> {
    options
        .config_file
        .clone()
        .or_else(|| env.plughost_log.clone())
}

/// Works out the effective settings, reading the config file if there is one
/// (but installing nothing).
pub fn effective_config(options: &LoggingOptions, env: &LoggingEnv) -> EffectiveLogging {
    let loaded = config_path(options, env).map(|path| {
        let config = LoggingConfig::load(&path);
        (path, config)
    });
    resolve(options, env, loaded)
}

/// Combines options, environment and a loaded (or failed) config file into
/// the effective settings. Pure: no I/O, no global state.
pub fn resolve(
    options: &LoggingOptions,
    env: &LoggingEnv,
    loaded: Option<(PathBuf, Result<LoggingConfig, LoggingError>)>,
) -> EffectiveLogging {
    let mut warnings = Vec::new();
    let (config, config_file) = match loaded {
        Some((path, Ok(config))) => (config, Some(path)),
        Some((path, Err(err))) => {
            warnings.push(format!(
                "logging config {} not used ({err}); logging to the console only",
                path.display()
            ));
            (LoggingConfig::default(), None)
        }
        None => (LoggingConfig::default(), None),
    };
    let config_filter = config.directives(options.default_level);
    let filter = match &env.rust_log {
        Some(directives) if EnvFilter::builder().parse(directives).is_ok() => directives.clone(),
        Some(directives) => {
            warnings.push(format!(
                "{FILTER_ENV}={directives:?} is not a valid filter; using {config_filter:?} instead"
            ));
            config_filter
        }
        None => config_filter,
    };
    EffectiveLogging {
        filter,
        console_format: options.format.or(config.format).unwrap_or_default(),
        file: config.file,
        config_file,
        warnings,
    }
}

/// Keeps the log file writer alive; drop it last (at the end of `main`) so
/// buffered records are flushed.
#[must_use = "dropping the guard stops writing the log file"]
#[derive(Debug)]
pub struct LoggingGuard {
    _file_writer: Option<WorkerGuard>,
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs logging for the process as [`effective_config`] works it out,
/// then logs each warning it collected. Fails only if logging is already
/// installed; every problem with the configuration falls back to the console.
pub fn init(options: LoggingOptions) -> Result<LoggingGuard, LoggingError> {
    let mut effective = effective_config(&options, &LoggingEnv::from_process());
    let filter = EnvFilter::builder()
        .parse(&effective.filter)
        .unwrap_or_else(|_| EnvFilter::new(options.default_level.to_string()));

    let mut layers: Vec<BoxedLayer> = vec![console_layer(effective.console_format)];
    let mut file_writer = None;
    if let Some(file) = &effective.file {
        match file_layer(file) {
            Ok((layer, guard)) => {
                layers.push(layer);
                file_writer = Some(guard);
            }
            Err(err) => effective.warnings.push(format!(
                "log file in {} not opened ({err}); logging to the console only",
                file.directory.display()
            )),
        }
    }

    tracing_subscriber::registry()
        .with(layers.with_filter(filter))
        .try_init()
        .map_err(|err| LoggingError::AlreadyInitialised {
            reason: err.to_string(),
        })?;

    for warning in &effective.warnings {
        tracing::warn!(target: "plughost::logging", "{warning}");
    }
    tracing::debug!(
        target: "plughost::logging",
        filter = %effective.filter,
        config = ?effective.config_file,
        "logging initialised"
    );
    Ok(LoggingGuard {
        _file_writer: file_writer,
    })
}

fn console_layer(format: LogFormat) -> BoxedLayer {
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Text => layer.with_ansi(std::io::stderr().is_terminal()).boxed(),
        LogFormat::Json => layer.json().boxed(),
    }
}

fn file_layer(file: &FileConfig) -> Result<(BoxedLayer, WorkerGuard), rolling::InitError> {
    let rotation = match file.rotation {
        Rotation::Minutely => rolling::Rotation::MINUTELY,
        Rotation::Hourly => rolling::Rotation::HOURLY,
        Rotation::Daily => rolling::Rotation::DAILY,
        Rotation::Never => rolling::Rotation::NEVER,
    };
    let mut builder = RollingFileAppender::builder()
        .rotation(rotation)
        .filename_prefix(file.prefix.clone());
    if let Some(max_files) = file.max_files {
        builder = builder.max_log_files(max_files);
    }
    let appender = builder.build(&file.directory)?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(false);
    let layer = match file.format {
        LogFormat::Text => layer.boxed(),
        LogFormat::Json => layer.json().boxed(),
    };
    Ok((layer, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(plughost_log: Option<&str>, rust_log: Option<&str>) -> LoggingEnv {
        LoggingEnv {
            plughost_log: plughost_log.map(PathBuf::from),
            rust_log: rust_log.map(str::to_owned),
        }
    }

    fn config(text: &str) -> Option<(PathBuf, Result<LoggingConfig, LoggingError>)> {
        Some(("test.toml".into(), LoggingConfig::from_toml(text)))
    }

    #[test]
    fn without_anything_it_is_console_text_at_the_default_level() {
        let effective = resolve(&LoggingOptions::default(), &env(None, None), None);
        // lapin's own records (a raw dump per returned message) stay out.
        assert_eq!(effective.filter, "warn,lapin=error");
        assert_eq!(effective.console_format, LogFormat::Text);
        assert_eq!(effective.file, None);
        assert!(effective.warnings.is_empty());
    }

    #[test]
    fn config_sets_levels_per_target_format_and_file() {
        let effective = resolve(
            &LoggingOptions::default(),
            &env(None, None),
            config(
                "level = \"INFO\"\nformat = \"json\"\n[targets]\nlapin = \"warn\"\n\"plughost::rpc\" = \"trace\"\n\
                 [file]\ndirectory = \"/tmp/logs\"\nrotation = \"hourly\"\nmax_files = 3\n",
            ),
        );
        assert_eq!(effective.filter, "info,lapin=warn,plughost::rpc=trace");
        assert_eq!(effective.console_format, LogFormat::Json);
        assert_eq!(
            effective.file,
            Some(FileConfig {
                directory: "/tmp/logs".into(),
                prefix: "plughost.log".into(),
                rotation: Rotation::Hourly,
                max_files: Some(3),
                format: LogFormat::Text,
            })
        );
        assert_eq!(effective.config_file, Some(PathBuf::from("test.toml")));
    }

    #[test]
    fn command_line_format_beats_config_and_rust_log_beats_config_levels() {
        let options = LoggingOptions {
            format: Some(LogFormat::Text),
            ..LoggingOptions::default()
        };
        let effective = resolve(
            &options,
            &env(None, Some("plughost=debug")),
            config("level = \"error\"\nformat = \"json\"\n"),
        );
        assert_eq!(effective.console_format, LogFormat::Text);
        assert_eq!(effective.filter, "plughost=debug");
    }

    #[test]
    fn a_broken_config_falls_back_to_the_console_with_one_warning() {
        for text in [
            "level = \"loud\"",
            "colour = true",
            "level = ",
            "[targets]\n\"a b\" = \"info\"",
            "[file]\nrotation = \"daily\"",
        ] {
            let effective = resolve(&LoggingOptions::default(), &env(None, None), config(text));
            assert_eq!(effective.filter, "warn,lapin=error", "{text}");
            assert_eq!(effective.console_format, LogFormat::Text, "{text}");
            assert_eq!(effective.file, None, "{text}");
            assert_eq!(effective.config_file, None, "{text}");
            assert_eq!(effective.warnings.len(), 1, "{text}");
            assert!(
                effective.warnings[0].contains("test.toml"),
                "{}",
                effective.warnings[0]
            );
        }
    }

    #[test]
    fn a_missing_config_file_falls_back_with_a_warning_naming_it() {
        let options = LoggingOptions {
            config_file: Some("/nonexistent/plughost-logging.toml".into()),
            ..LoggingOptions::default()
        };
        let effective = effective_config(&options, &env(None, None));
        assert_eq!(effective.warnings.len(), 1);
        assert!(
            effective.warnings[0].contains("/nonexistent/plughost-logging.toml"),
            "{:?}",
            effective.warnings
        );
        assert!(
            effective.warnings[0].contains("cannot read"),
            "{:?}",
            effective.warnings
        );
    }

    #[test]
    fn a_bad_rust_log_is_reported_and_ignored() {
        let effective = resolve(
            &LoggingOptions::default(),
            &env(None, Some("plughost=[[")),
            config("level = \"info\""),
        );
        assert_eq!(effective.filter, "info,lapin=error");
        assert_eq!(effective.warnings.len(), 1);
        assert!(
            effective.warnings[0].contains("RUST_LOG"),
            "{:?}",
            effective.warnings
        );
    }

    #[test]
    fn the_config_file_comes_from_the_command_line_before_the_environment() {
        let options = LoggingOptions {
            config_file: Some("cli.toml".into()),
            ..LoggingOptions::default()
        };
        assert_eq!(
            config_path(&options, &env(Some("env.toml"), None)),
            Some("cli.toml".into())
        );
        assert_eq!(
            config_path(&LoggingOptions::default(), &env(Some("env.toml"), None)),
            Some("env.toml".into())
        );
        assert_eq!(
            config_path(&LoggingOptions::default(), &env(None, None)),
            None
        );
    }

    #[test]
    fn a_config_file_on_disk_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logging.toml");
        std::fs::write(&path, "level = \"debug\"\n").unwrap();
        let effective = effective_config(
            &LoggingOptions::default(),
            &env(Some(path.to_str().unwrap()), None),
        );
        assert_eq!(effective.filter, "debug,lapin=error");
        assert_eq!(effective.config_file, Some(path));
        assert!(effective.warnings.is_empty());
    }

    #[test]
    fn log_format_parses_from_cli_text() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert!("yaml".parse::<LogFormat>().is_err());
        assert_eq!(LogFormat::Text.to_string(), "text");
    }
}
