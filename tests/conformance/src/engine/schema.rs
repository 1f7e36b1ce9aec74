//! Does a JSON value fit a method's published JSON Schema? The `examples`
//! check holds every example to its method's signature: each argument to
//! its parameter's schema, each expected result to the result's schema, so
//! a signature that says something else than the code does is caught.
//!
//! This is the subset of JSON Schema (2020-12) that `schemars` writes for
//! serde types, checked without a schema library: `type` (one or a list),
//! `enum`, `const`, numeric bounds and the integer `format`s (`uint32`,
//! `int64`, ...), `items` and `prefixItems`, `minItems`/`maxItems`,
//! `properties`, `required`, `additionalProperties`, `$ref` into the
//! schema's own `$defs`, and `anyOf` / `oneOf` / `allOf`. Keywords outside
//! it (string patterns, formats of strings) are not checked.

use serde_json::{Map, Value};

/// `Ok` when `value` fits `schema`, else what does not fit, with its path.
pub(crate) fn fits(value: &Value, schema: &Value) -> Result<(), String> {
    Checker { root: schema }.check(value, schema, "")
}

struct Checker<'a> {
    root: &'a Value,
}

impl Checker<'_> {
    fn check(&self, value: &Value, schema: &Value, at: &str) -> Result<(), String> {
        let schema = match schema {
            Value::Bool(true) => return Ok(()),
            Value::Bool(false) => {
                return Err(format!("{} is not allowed here{}", value, place(at)))
            }
            Value::Object(schema) => schema,
            _ => return Ok(()),
        };
        if let Some(Value::String(reference)) = schema.get("$ref") {
            let target = reference
                .strip_prefix("#/")
                .map(|path| {
                    path.split('/')
                        .try_fold(self.root, |node, key| node.get(key))
                })
                .unwrap_or(None);
            match target {
                Some(target) => self.check(value, target, at)?,
                None => return Ok(()), // not one of ours: not checked
            }
        }
        self.types(value, schema, at)?;
        self.values(value, schema, at)?;
        self.numbers(value, schema, at)?;
        self.arrays(value, schema, at)?;
        self.objects(value, schema, at)?;
        self.combinations(value, schema, at)
    }

    fn types(&self, value: &Value, schema: &Map<String, Value>, at: &str) -> Result<(), String> {
        let types: Vec<&str> = match schema.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Ok(()),
        };
        if types.iter().any(|t| is_type(value, t)) {
            Ok(())
        } else {
            Err(format!(
                "{value} is not of type {}{}",
                types.join(" or "),
                place(at)
            ))
        }
    }

    fn values(&self, value: &Value, schema: &Map<String, Value>, at: &str) -> Result<(), String> {
        if let Some(Value::Array(allowed)) = schema.get("enum") {
            if !allowed.contains(value) {
                return Err(format!(
                    "{value} is not one of {}{}",
                    Value::Array(allowed.clone()),
                    place(at)
                ));
            }
        }
        if let Some(wanted) = schema.get("const") {
            if wanted != value {
                return Err(format!("{value} is not {wanted}{}", place(at)));
            }
        }
        Ok(())
    }

    fn numbers(&self, value: &Value, schema: &Map<String, Value>, at: &str) -> Result<(), String> {
        let Some(n) = value.as_f64() else {
            return Ok(());
        };
        let bound = |key: &str| schema.get(key).and_then(Value::as_f64);
        let (low, high) = format_range(schema.get("format").and_then(Value::as_str));
        let too_small = bound("minimum").is_some_and(|m| n < m)
            || bound("exclusiveMinimum").is_some_and(|m| n <= m)
            || low.is_some_and(|m| n < m);
        let too_large = bound("maximum").is_some_and(|m| n > m)
            || bound("exclusiveMaximum").is_some_and(|m| n >= m)
            || high.is_some_and(|m| n > m);
        if too_small || too_large {
            return Err(format!("{value} is out of range{}", place(at)));
        }
        Ok(())
    }

    fn arrays(&self, value: &Value, schema: &Map<String, Value>, at: &str) -> Result<(), String> {
        let Value::Array(items) = value else {
            return Ok(());
        };
        let count = |key: &str| schema.get(key).and_then(Value::as_u64);
        let n = items.len() as u64;
        if count("minItems").is_some_and(|m| n < m) || count("maxItems").is_some_and(|m| n > m) {
            return Err(format!("{n} items are not allowed{}", place(at)));
        }
        let prefix = match schema.get("prefixItems") {
            Some(Value::Array(prefix)) => prefix.as_slice(),
            _ => &[],
        };
        for (i, item) in items.iter().enumerate() {
            let path = format!("{at}/{i}");
            match (prefix.get(i), schema.get("items")) {
                (Some(s), _) | (None, Some(s)) => self.check(item, s, &path)?,
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn objects(&self, value: &Value, schema: &Map<String, Value>, at: &str) -> Result<(), String> {
        let Value::Object(fields) = value else {
            return Ok(());
        };
        if let Some(Value::Array(required)) = schema.get("required") {
            for key in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(key) {
                    return Err(format!("missing property `{key}`{}", place(at)));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        for (key, field) in fields {
            let path = format!("{at}/{key}");
            match (
                properties.and_then(|p| p.get(key)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => self.check(field, s, &path)?,
                (None, Some(extra)) => self.check(field, extra, &path)?,
                (None, None) => {}
            }
        }
        Ok(())
    }

    fn combinations(
        &self,
        value: &Value,
        schema: &Map<String, Value>,
        at: &str,
    ) -> Result<(), String> {
        if let Some(Value::Array(all)) = schema.get("allOf") {
            for s in all {
                self.check(value, s, at)?;
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(any)) = schema.get(key) {
                if !any.iter().any(|s| self.check(value, s, at).is_ok()) {
                    return Err(format!(
                        "{value} fits none of the `{key}` choices{}",
                        place(at)
                    ));
                }
            }
        }
        Ok(())
    }
}

fn is_type(value: &Value, t: &str) -> bool {
    match t {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

/// The range `schemars` means by an integer `format`.
fn format_range(format: Option<&str>) -> (Option<f64>, Option<f64>) {
    let range = |low: f64, high: f64| (Some(low), Some(high));
    match format {
        Some("uint8") => range(0.0, u8::MAX.into()),
        Some("uint16") => range(0.0, u16::MAX.into()),
        Some("uint32") => range(0.0, u32::MAX.into()),
        Some("uint64") | Some("uint") => range(0.0, u64::MAX as f64),
        Some("int8") => range(i8::MIN.into(), i8::MAX.into()),
        Some("int16") => range(i16::MIN.into(), i16::MAX.into()),
        Some("int32") => range(i32::MIN.into(), i32::MAX.into()),
        Some("int64") | Some("int") => range(i64::MIN as f64, i64::MAX as f64),
        _ => (None, None),
    }
}

fn place(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" (at {at})")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::fits;

    #[test]
    fn values_are_held_to_the_subset_schemars_writes() {
        let u32_schema = json!({"type": "integer", "format": "uint32", "minimum": 0});
        assert!(fits(&json!(10), &u32_schema).is_ok());
        assert!(fits(&json!(-1), &u32_schema).is_err());
        assert!(fits(&json!(5_000_000_000u64), &u32_schema).is_err());
        assert!(fits(&json!("10"), &u32_schema).is_err());
        let opt = json!({"type": ["string", "null"]});
        assert!(fits(&json!(null), &opt).is_ok());
        assert!(fits(&json!(1), &opt)
            .unwrap_err()
            .contains("string or null"));
        let point = json!({
            "$ref": "#/$defs/Point",
            "$defs": {"Point": {"type": "object", "required": ["x"],
                "properties": {"x": {"type": "integer"}}, "additionalProperties": false}}
        });
        assert!(fits(&json!({"x": 1}), &point).is_ok());
        assert!(fits(&json!({"y": 1}), &point)
            .unwrap_err()
            .contains("missing property `x`"));
        assert!(fits(&json!({"x": 1, "y": 2}), &point).is_err());
        let list = json!({"type": "array", "items": {"type": "integer"}});
        assert!(fits(&json!([1, 2]), &list).is_ok());
        assert!(fits(&json!([1, "a"]), &list).unwrap_err().contains("at /1"));
        let choice = json!({"anyOf": [{"type": "integer"}, {"enum": ["a"]}]});
        assert!(fits(&json!("a"), &choice).is_ok());
        assert!(fits(&json!("b"), &choice).is_err());
        assert!(fits(&json!({"anything": 1}), &json!(true)).is_ok());
    }
}
