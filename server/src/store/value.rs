//! The values a key can hold, with their Redis type and encoding names.

use super::bytes::CompactBytes;

/// A value in the keyspace. New data types add variants here.
#[derive(Clone, Debug)]
pub enum Value {
    Str(CompactBytes),
}

impl Value {
    pub fn str(s: &[u8]) -> Self {
        Value::Str(CompactBytes::new(s))
    }

    /// The name TYPE answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
        }
    }

    /// The name OBJECT ENCODING answers, derived from the content as Redis would store it.
    pub fn encoding(&self) -> &'static str {
        match self {
            Value::Str(s) => {
                let b = s.as_slice();
                if b.len() <= 20 && crate::util::parse_i64(b).is_some() {
                    "int"
                } else if b.len() <= 44 {
                    "embstr"
                } else {
                    "raw"
                }
            }
        }
    }

    /// Heap bytes owned by the value beyond the entry itself.
    pub fn heap_size(&self) -> usize {
        match self {
            Value::Str(s) => s.heap_size(),
        }
    }

    pub fn as_str_mut(&mut self) -> Option<&mut CompactBytes> {
        match self {
            Value::Str(s) => Some(s),
        }
    }

    pub fn as_str(&self) -> Option<&CompactBytes> {
        match self {
            Value::Str(s) => Some(s),
        }
    }
}
