//! The configuration a plugin instance is created with.
//!
//! It is the plugin's `config` table from the manifest, converted to JSON so
//! that it crosses the FFI boundary as one string.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::PluginError;

/// A plugin instance's configuration (an empty object when the manifest
/// gives none).
///
/// ```
/// use plughost_plugin_api::Config;
///
/// let config = Config::from_value(serde_json::json!({"greeting": "hi"}));
/// assert_eq!(config.get::<String>("greeting").unwrap().as_deref(), Some("hi"));
/// assert_eq!(config.get::<u32>("missing").unwrap(), None);
/// assert!(config.get::<u32>("greeting").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config(Value);

impl Config {
    /// Wraps a JSON value (`null` counts as empty).
    pub fn from_value(value: Value) -> Self {
        match value {
            Value::Null => Self(Value::Object(Default::default())),
            other => Self(other),
        }
    }

    /// Parses the JSON text the host sends (empty text is an empty config).
    ///
    /// ```
    /// use plughost_plugin_api::Config;
    ///
    /// assert_eq!(Config::from_json("").unwrap(), Config::default());
    /// assert_eq!(Config::from_json(r#"{"n": 1}"#).unwrap().value()["n"], 1);
    /// assert_eq!(Config::from_json("{oops").unwrap_err().code, 400);
    /// ```
    pub fn from_json(text: &str) -> Result<Self, PluginError> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let value: Value = serde_json::from_str(text).map_err(|e| {
            PluginError::bad_arguments(format!("plugin config is not valid JSON: {e}"))
        })?;
        Ok(Self::from_value(value))
    }

    /// Reads one key, `None` when absent, an error naming the key when it has
    /// the wrong type.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| PluginError::bad_arguments(format!("config key `{key}`: {e}"))),
        }
    }

    /// The whole configuration as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }
}
