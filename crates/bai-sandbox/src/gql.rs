//! Just enough GraphQL to answer with the fields a query asks for, in the order it asks for them
//! (the official CLI prints the values of each item in response order).

use serde_json::{Map, Value};

/// One selected field: `alias: name(args) { children }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Field {
    pub key: String,
    pub name: String,
    pub children: Vec<Field>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Name(String),
    Punct(char),
    Other,
}

fn tokenize(q: &str) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut it = q.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            c if c.is_whitespace() || c == ',' => {}
            '#' => {
                for c in it.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => {
                let mut esc = false;
                for c in it.by_ref() {
                    if esc {
                        esc = false;
                    } else if c == '\\' {
                        esc = true;
                    } else if c == '"' {
                        break;
                    }
                }
                out.push(Tok::Other);
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut s = String::from(c);
                while let Some(&n) = it.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        s.push(n);
                        it.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Name(s));
            }
            '{' | '}' | '(' | ')' | ':' | '@' | '[' | ']' => out.push(Tok::Punct(c)),
            _ => out.push(Tok::Other),
        }
    }
    out
}

fn skip_balanced(t: &[Tok], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < t.len() {
        if t[i] == Tok::Punct(open) {
            depth += 1;
        } else if t[i] == Tok::Punct(close) {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// Parses a selection set starting at `{`; returns the fields and the index after `}`.
fn selection(t: &[Tok], mut i: usize) -> (Vec<Field>, usize) {
    let mut fields = Vec::new();
    i += 1; // '{'
    while i < t.len() {
        match &t[i] {
            Tok::Punct('}') => return (fields, i + 1),
            Tok::Name(n) => {
                let mut key = n.clone();
                let mut name = n.clone();
                i += 1;
                if t.get(i) == Some(&Tok::Punct(':')) {
                    if let Some(Tok::Name(real)) = t.get(i + 1) {
                        name = real.clone();
                        i += 2;
                    }
                } else {
                    key = name.clone();
                }
                if t.get(i) == Some(&Tok::Punct('(')) {
                    i = skip_balanced(t, i, '(', ')');
                }
                while t.get(i) == Some(&Tok::Punct('@')) {
                    i += 2;
                    if t.get(i) == Some(&Tok::Punct('(')) {
                        i = skip_balanced(t, i, '(', ')');
                    }
                }
                let mut children = Vec::new();
                if t.get(i) == Some(&Tok::Punct('{')) {
                    let (c, next) = selection(t, i);
                    children = c;
                    i = next;
                }
                fields.push(Field {
                    key,
                    name,
                    children,
                });
            }
            _ => i += 1,
        }
    }
    (fields, i)
}

/// The root fields of the first operation (or `None` when there is no selection set).
pub(crate) fn parse(query: &str) -> Option<Vec<Field>> {
    let t = tokenize(query);
    let mut i = 0;
    // Skip `query Name($vars...)` up to the first top-level '{'.
    while i < t.len() {
        match t[i] {
            Tok::Punct('(') => i = skip_balanced(&t, i, '(', ')'),
            Tok::Punct('{') => return Some(selection(&t, i).0),
            _ => i += 1,
        }
    }
    None
}

/// Keeps only the selected fields of `full`, in selection order (arrays are mapped).
pub(crate) fn project(full: &Value, fields: &[Field]) -> Value {
    if fields.is_empty() {
        return full.clone();
    }
    match full {
        Value::Array(a) => Value::Array(a.iter().map(|v| project(v, fields)).collect()),
        Value::Object(o) => {
            let mut m = Map::new();
            for f in fields {
                let v = o
                    .get(&f.name)
                    .map_or(Value::Null, |v| project(v, &f.children));
                m.insert(f.key.clone(), v);
            }
            Value::Object(m)
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn projects_in_query_order() {
        let q = r#"query($limit:Int!, $status: String) {
          compute_session_list(limit:$limit, status:$status, filter: "a { b }") {
            items { name id st: status containers { agent } } total_count } }"#;
        let roots = parse(q).unwrap();
        assert_eq!(roots[0].name, "compute_session_list");
        let full = json!({"total_count": 1, "items": [{"id": "x", "status": "RUNNING", "name": "n",
            "extra": 1, "containers": [{"agent": "a", "x": 2}]}]});
        let out = project(&full, &roots[0].children);
        assert_eq!(
            out.to_string(),
            r#"{"items":[{"name":"n","id":"x","st":"RUNNING","containers":[{"agent":"a"}]}],"total_count":1}"#
        );
    }
}
