//! `plughost_cli::logging::init` for real: a config file with a log file. One
//! test per process, since a process has one global subscriber.

use plughost_cli::logging::{init, LoggingError, LoggingOptions};

#[test]
fn init_writes_records_to_the_configured_file_and_refuses_a_second_init() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let config = dir.path().join("logging.toml");
    std::fs::write(
        &config,
        format!(
            "level = \"info\"\n[targets]\n\"logging_init\" = \"debug\"\n[file]\ndirectory = {:?}\nprefix = \"test.log\"\nrotation = \"never\"\nformat = \"json\"\n",
            logs.to_str().unwrap()
        ),
    )
    .unwrap();
    std::env::remove_var("RUST_LOG");
    std::env::remove_var("PLUGHOST_LOG");
    let guard = init(LoggingOptions {
        config_file: Some(config),
        ..LoggingOptions::default()
    })
    .unwrap();
    tracing::debug!(answer = 42, "written to the file");
    tracing::trace!("below the configured level");

    assert!(matches!(
        init(LoggingOptions::default()),
        Err(LoggingError::AlreadyInitialised { .. })
    ));
    drop(guard);

    let text = std::fs::read_to_string(logs.join("test.log")).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(
        records.iter().any(
            |record| record["fields"]["message"] == "written to the file"
                && record["fields"]["answer"] == 42
        ),
        "{text}"
    );
    assert!(!text.contains("below the configured level"), "{text}");
}
