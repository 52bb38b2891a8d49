//! JSON text exactly as Python's `json.dumps(value, indent=2)` writes it
//! (`ensure_ascii=True`, keys in insertion order), so the Rust command line
//! and the Python facade print the same bytes for `inspect --json` and the
//! loader metadata files.

/// A JSON value; objects keep their keys in the order given.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Str(String),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}
impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(n: $t) -> Value {
                Value::Int(n as i128)
            }
        }
    )*};
}
int_value!(u8, u16, u32, u64, usize, i32, i64);

/// `json.dumps(value, indent=2)`, without a trailing newline.
pub fn pretty(value: &Value) -> String {
    let mut out = String::new();
    write(&mut out, value, 0);
    out
}

fn write(out: &mut String, value: &Value, depth: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => out.push_str(&n.to_string()),
        Value::Str(s) => string(out, s),
        Value::List(items) if items.is_empty() => out.push_str("[]"),
        Value::Object(items) if items.is_empty() => out.push_str("{}"),
        Value::List(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                separator(out, i, depth + 1);
                write(out, v, depth + 1);
            }
            newline(out, depth);
            out.push(']');
        }
        Value::Object(items) => {
            out.push('{');
            for (i, (k, v)) in items.iter().enumerate() {
                separator(out, i, depth + 1);
                string(out, k);
                out.push_str(": ");
                write(out, v, depth + 1);
            }
            newline(out, depth);
            out.push('}');
        }
    }
}

fn separator(out: &mut String, i: usize, depth: usize) {
    if i > 0 {
        out.push(',');
    }
    newline(out, depth);
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    out.extend(std::iter::repeat_n(' ', 2 * depth));
}

/// A JSON string with `ensure_ascii=True`: non-ASCII as `\uXXXX` (UTF-16 units).
pub fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr()` of a `str`: the quote it picks and the escapes it writes
/// (the command line's messages and `inspect`'s text quote as the Python
/// facade always did).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::from(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_repr() {
        assert_eq!(py_repr("GPL"), "'GPL'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("a'\"\n"), "'a\\'\"\\n'");
    }

    #[test]
    fn python_layout() {
        let v = Value::Object(vec![
            ("a".into(), Value::List(vec![1u32.into(), "x\u{e9}".into()])),
            ("b".into(), Value::List(vec![])),
            ("c".into(), Value::Null),
            ("d".into(), Value::Object(vec![("e".into(), true.into())])),
        ]);
        assert_eq!(
            pretty(&v),
            "{\n  \"a\": [\n    1,\n    \"x\\u00e9\"\n  ],\n  \"b\": [],\n  \"c\": null,\n  \"d\": {\n    \"e\": true\n  }\n}"
        );
    }
}
