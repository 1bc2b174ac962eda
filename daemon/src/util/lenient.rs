//! Tolerant reading of fields that another implementation may spell differently.
//!
//! Why: our servers write every field of a protocol message typed (see `crate::relay::wire`
//! and `crate::nexus::wire`), but our clients also talk to servers we did not write (the
//! seed's relay, the hosted Nexus). A client must not throw away a good answer because one
//! field it barely needs is missing or has another JSON type. The wire types therefore mark
//! the fields a client reads with one of these, which read such a field as its default
//! (or `None`) instead of failing the whole message:
//!
//! ```text
//! #[serde(default, deserialize_with = "lenient::or_default")]   // absent/other type → T::default()
//! #[serde(default, deserialize_with = "lenient::option")]       // absent/null/other type → None
//! #[serde(default, deserialize_with = "lenient::items")]        // a list: the items that read, others dropped
//! ```
//!
//! Requests that our servers read are never lenient: a mistyped request field is a 400 there.
//!
//! [`Decimal`] is the same idea for ids and cursors: written as a decimal string, read back as
//! a string or a number.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// An id or cursor: written as the decimal string of a number (`"123"`), read as a string
/// or as a bare number (`123`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(untagged)]
pub enum Decimal {
    /// `"123"`.
    Text(String),
    /// `123`.
    Number(u64),
}

impl Decimal {
    /// `n`, as it is written.
    pub fn of(n: u64) -> Decimal {
        Decimal::Text(n.to_string())
    }

    /// The number it names (`None` for a string that is not one).
    pub fn number(&self) -> Option<u64> {
        match self {
            Decimal::Text(s) => s.parse().ok(),
            Decimal::Number(n) => Some(*n),
        }
    }

    /// As text.
    pub fn text(&self) -> String {
        match self {
            Decimal::Text(s) => s.clone(),
            Decimal::Number(n) => n.to_string(),
        }
    }
}

/// The field as `T`, or `T::default()` when it has another shape.
pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).unwrap_or_default())
}

/// The field as `Some(T)`, or `None` when it is `null` or has another shape.
pub fn option<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(T::deserialize(v).ok())
}

/// A list of which only the items that read as `T` are kept; not a list → empty.
pub fn items<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    Ok(match v {
        Value::Array(list) => list
            .into_iter()
            .filter_map(|i| T::deserialize(i).ok())
            .collect(),
        _ => Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Default, Debug, PartialEq)]
    struct Answer {
        #[serde(default, deserialize_with = "or_default")]
        ok: bool,
        #[serde(default, deserialize_with = "option")]
        name: Option<String>,
        #[serde(default, deserialize_with = "items")]
        ids: Vec<u64>,
    }

    #[test]
    fn mistyped_fields_read_as_defaults_and_the_rest_still_reads() {
        let a: Answer = serde_json::from_value(json!({"ok": "yes", "name": 5, "ids": [1, "x", 3]}))
            .expect("lenient");
        assert_eq!(
            a,
            Answer {
                ok: false,
                name: None,
                ids: vec![1, 3]
            }
        );
        let a: Answer =
            serde_json::from_value(json!({"ok": true, "name": "n", "ids": {}})).expect("lenient");
        assert_eq!((a.ok, a.name.as_deref(), a.ids.len()), (true, Some("n"), 0));
        assert_eq!(
            serde_json::from_value::<Answer>(json!({})).expect("empty"),
            Answer::default()
        );
    }
}
