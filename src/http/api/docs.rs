//! The words of an endpoint's documentation (`endpoints.rs` gives each its `Doc`), for the
//! OpenAPI document (`http/openapi.rs`). The schemas are the handlers' own DTOs
//! (`utoipa::ToSchema`).

use std::borrow::Cow;

use utoipa::openapi::{RefOr, Schema};
use utoipa::ToSchema;

/// A JSON shape: its name, its schema, and the named schemas it refers to.
pub struct Shape {
    pub name: Cow<'static, str>,
    pub schema: RefOr<Schema>,
    pub nested: Vec<(String, RefOr<Schema>)>,
}

pub(super) fn shape<T: ToSchema>() -> Shape {
    let mut nested = Vec::new();
    T::schemas(&mut nested);
    Shape {
        name: T::name(),
        schema: T::schema(),
        nested,
    }
}

/// What a successful answer is.
pub enum Answer {
    Json(u16, fn() -> Shape),
    /// A paginated list of these, in the `{count, next, previous, results}` envelope.
    List(fn() -> Shape),
    NoContent,
    /// The audit export: CSV or JSON (an array of entries) as `?format=` asks.
    Export(fn() -> Shape),
    /// A `302` to where the text says.
    Redirect(&'static str),
}

/// One operation of the document.
pub struct Doc {
    pub summary: &'static str,
    pub tag: &'static str,
    pub request: Option<fn() -> Shape>,
    /// The body may be left out entirely.
    pub request_optional: bool,
    pub answer: Answer,
    /// Query parameters: (name, description, schema type).
    pub query: &'static [(&'static str, &'static str, &'static str)],
    /// A list's `search` and `ordering`.
    pub sortable: Option<&'static super::Sortable>,
    /// Error answers beyond those every route of its kind has: (status, what).
    pub errors: &'static [(u16, &'static str)],
}

/// An operation of `tag`, what it does, and its successful answer.
pub(super) fn d(tag: &'static str, summary: &'static str, answer: Answer) -> Doc {
    Doc::new(tag, summary, answer)
}

impl Doc {
    fn new(tag: &'static str, summary: &'static str, answer: Answer) -> Doc {
        Doc {
            summary,
            tag,
            request: None,
            request_optional: false,
            answer,
            query: &[],
            sortable: None,
            errors: &[],
        }
    }

    /// A list that takes `search` and `ordering` (besides its `query`).
    pub(super) fn sorted(mut self, sortable: &'static super::Sortable) -> Doc {
        self.sortable = Some(sortable);
        self
    }

    pub(super) fn errors(mut self, errors: &'static [(u16, &'static str)]) -> Doc {
        self.errors = errors;
        self
    }

    pub(super) fn body<T: ToSchema>(mut self) -> Doc {
        self.request = Some(shape::<T>);
        self
    }

    pub(super) fn optional_body<T: ToSchema>(mut self) -> Doc {
        self.request = Some(shape::<T>);
        self.request_optional = true;
        self
    }

    pub(super) fn query(
        mut self,
        query: &'static [(&'static str, &'static str, &'static str)],
    ) -> Doc {
        self.query = query;
        self
    }
}

pub(super) fn ok<T: ToSchema>() -> Answer {
    Answer::Json(200, shape::<T>)
}

pub(super) fn created<T: ToSchema>() -> Answer {
    Answer::Json(201, shape::<T>)
}

pub(super) fn list<T: ToSchema>() -> Answer {
    Answer::List(shape::<T>)
}

pub(super) const PAGING: &[(&str, &str, &str)] = &[
    ("page", "page number, from 1", "integer"),
    (
        "page_size",
        "entries per page, 1 to 100 (default 20)",
        "integer",
    ),
];
