//! How much JSON one API body may hold: at most [`MAX_VALUES`] values.
//!
//! A parsed `serde_json::Value` costs 32 bytes or more per value, and a
//! notification is copied several times on its way to the store and the
//! sockets, so a 980 KB body that was one array of 490,000 zeros raised
//! the server's memory by 141 MiB and sixteen at once by 1.2 GiB. Counting
//! the values first, in one pass over the bytes that builds nothing, caps
//! what any one body can cost (a few MiB at the budget, whatever its size);
//! it does not make a small body with many values cheap.

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Most JSON values in one body: every scalar, array and object counts one
/// (object keys do not). A broadcast to the largest audience (10,000
/// `userIds`) with a notification of a few hundred fields fits.
pub const MAX_VALUES: usize = 20_000;

/// Bytes below which no body can hold more than [`MAX_VALUES`] values:
/// a scalar takes one byte at least, an array or object two, and every
/// value after the first in an array or object one more for its comma, so
/// `n` values take `2n - 1` bytes or more (an array of zeros, `[0,0,0]`,
/// takes exactly that; object keys and whitespace only add).
const FEWEST_BYTES_OVER: usize = 2 * (MAX_VALUES + 1) - 1;

/// Whether `bytes` holds more than [`MAX_VALUES`] JSON values before its
/// end or its first syntax error (bad JSON is left to the parser that
/// reports it). A body too short to hold that many, as every notification
/// is, is not walked at all.
pub fn too_many_values(bytes: &[u8]) -> bool {
    bytes.len() >= FEWEST_BYTES_OVER && walk(bytes)
}

/// Counts the values of `bytes` against the budget: whether it ran out.
fn walk(bytes: &[u8]) -> bool {
    let budget = Budget {
        left: Cell::new(MAX_VALUES),
        over: Cell::new(false),
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let _ = Count(&budget).deserialize(&mut de);
    budget.over.get()
}

/// The values a body may still hold, and whether one more was met.
struct Budget {
    left: Cell<usize>,
    over: Cell<bool>,
}

/// Counts one value and whatever it holds against the budget.
struct Count<'a>(&'a Budget);

impl Count<'_> {
    /// Counts one value; past the budget, stops the walk.
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        let left = self.0.left.get();
        if left == 0 {
            self.0.over.set(true);
            return Err(E::custom("too many values"));
        }
        self.0.left.set(left - 1);
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for Count<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Count<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.take()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.take()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.take()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.take()
    }
    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        self.take()
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.take()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.take()?;
        while seq.next_element_seed(Count(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.take()?;
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Count(self.0))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body of exactly `n` values: an array of `n - 1` zeros.
    fn zeros(n: usize) -> Vec<u8> {
        serde_json::to_vec(&vec![0; n - 1]).unwrap()
    }

    #[test]
    fn counts_every_value_up_to_the_budget() {
        assert!(!too_many_values(&zeros(MAX_VALUES)));
        assert!(too_many_values(&zeros(MAX_VALUES + 1)));
        // Keys are not values; members, arrays and objects are.
        let members: serde_json::Map<String, serde_json::Value> = (0..MAX_VALUES - 1)
            .map(|i| (format!("k{i}"), serde_json::Value::Null))
            .collect();
        let object = serde_json::to_vec(&members).unwrap();
        assert!(!too_many_values(&object));
        let nested = format!("[{}]", String::from_utf8(object).unwrap());
        assert!(too_many_values(nested.as_bytes()));
    }

    #[test]
    fn no_body_shorter_than_the_bound_holds_too_many_values() {
        // The densest bodies of `MAX_VALUES + 1` values, each walked: none
        // is shorter than the bound the walk is skipped below.
        let n = MAX_VALUES + 1;
        let empties = format!("[{}]", vec!["[]"; n - 1].join(","));
        let nulls = format!("{{{}}}", vec!["\"\":0"; n - 1].join(","));
        for dense in [zeros(n), empties.into_bytes(), nulls.into_bytes()] {
            assert!(walk(&dense));
            assert!(dense.len() >= FEWEST_BYTES_OVER, "{}", dense.len());
        }
        // The array of zeros is exactly as long as the bound.
        assert_eq!(zeros(n).len(), FEWEST_BYTES_OVER);
    }

    #[test]
    fn bad_json_is_left_to_the_parser() {
        for bad in ["", "{", "[1,", "nul", "[1] x", "{\"a\" 1}"] {
            assert!(!too_many_values(bad.as_bytes()), "{bad}");
        }
    }
}
