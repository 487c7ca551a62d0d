//! The whole request pipeline in one process: routing, path normalization, credentials (the
//! owner's token, an API key, garbage), headers, body limits, and every JSON request body
//! (built from every property name of the OpenAPI document, or raw bytes) through its
//! handler's parsing and validation. No request may panic the server or answer 500.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
    Name(u8),
    List(Vec<Json>),
}

#[derive(Arbitrary, Debug)]
enum Body {
    Raw(Vec<u8>),
    Object(Vec<(u8, Json)>),
}

#[derive(Arbitrary, Debug)]
enum Path {
    /// One of the route table's paths, with this id.
    Route(u8, u32),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    path: Path,
    method: Option<String>,
    credential: u8,
    headers: Vec<(String, String)>,
    body: Body,
}

struct Words {
    routes: Vec<(String, String)>,
    fields: Vec<String>,
}

fn words() -> &'static Words {
    static WORDS: OnceLock<Words> = OnceLock::new();
    WORDS.get_or_init(|| Words {
        routes: claribi::fuzzing::route_paths("1", "t0k3n")
            .into_iter()
            .map(|(m, p)| (m.to_string(), p))
            .collect(),
        fields: claribi::fuzzing::field_names(),
    })
}

fn value(json: &Json, words: &Words, depth: u8) -> serde_json::Value {
    use serde_json::Value as V;
    match json {
        Json::Null => V::Null,
        Json::Bool(b) => V::Bool(*b),
        Json::Int(n) => V::from(*n),
        Json::Float(f) => serde_json::Number::from_f64(*f).map_or(V::Null, V::Number),
        Json::Text(s) => V::String(s.clone()),
        Json::Name(i) => V::String(words.fields[*i as usize % words.fields.len()].clone()),
        Json::List(items) if depth < 4 => {
            V::Array(items.iter().map(|j| value(j, words, depth + 1)).collect())
        }
        Json::List(_) => V::Array(Vec::new()),
    }
}

fuzz_target!(|input: Input| {
    let stack = claribi::fuzzing::stack();
    let words = words();
    let (route_method, path) = match &input.path {
        Path::Route(i, id) => {
            let (m, p) = &words.routes[*i as usize % words.routes.len()];
            (m.clone(), p.replacen("/1/", &format!("/{id}/"), 1))
        }
        Path::Raw(p) => ("GET".to_string(), p.clone()),
    };
    let method = input.method.unwrap_or(route_method);
    let mut headers: Vec<(Vec<u8>, Vec<u8>)> = input
        .headers
        .iter()
        .take(8)
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    let credential = match input.credential % 4 {
        0 => None,
        1 => Some(format!("Bearer {}", stack.owner_token)),
        2 => Some(format!("Bearer {}", stack.key)),
        _ => Some("Bearer claribi_key_000000000000000000000000000000000000".to_string()),
    };
    if let Some(c) = credential {
        headers.push((b"authorization".to_vec(), c.into_bytes()));
    }
    let body = match &input.body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Object(fields) => {
            headers.push((b"content-type".to_vec(), b"application/json".to_vec()));
            let object: serde_json::Map<String, serde_json::Value> = fields
                .iter()
                .take(12)
                .map(|(name, v)| {
                    (
                        words.fields[*name as usize % words.fields.len()].clone(),
                        value(v, words, 0),
                    )
                })
                .collect();
            serde_json::to_vec(&object).unwrap_or_default()
        }
    };
    let _ = stack.request(method.as_bytes(), &path, &headers, &body);
});
