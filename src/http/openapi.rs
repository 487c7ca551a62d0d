//! The OpenAPI 3.1 document of the API (`GET /api/schema/`): schemas derived from the DTOs
//! (`utoipa::ToSchema`), one operation per route of the route table, each described by an
//! exhaustive match on the endpoint, so that a new endpoint without a description does not
//! compile, and a test holds the document's paths and methods to the route table both ways.

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::{Secret, Timestamp};

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("RFC 3339, UTC, seconds"))
            .into()
    }
}

impl ToSchema for Timestamp {}

impl PartialSchema for Secret {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Password)))
            .into()
    }
}

impl ToSchema for Secret {}

use std::sync::LazyLock;

use utoipa::openapi::content::Content;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ArrayBuilder, ComponentsBuilder, InfoBuilder, OpenApi, OpenApiBuilder, Ref, Required,
};

use super::api::docs::{Answer, Shape};
use super::router::{BodyKind, Route, Space, Verb};
use crate::auth::principal::Guard;

/// The document, built once from the route table.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    serde_json::to_string(&build(super::ROUTES)).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the OpenAPI document did not serialize");
        String::from("{}")
    })
});

/// Where a route is documented: `/api/auth/...` and `/api/v1/...` as the contract writes
/// them (both prefixes serve every API route), root routes as they are.
pub fn documented_path(route: &Route) -> String {
    match route.space {
        Space::Api if route.pattern.starts_with("auth/") || route.pattern == "schema" => {
            format!("/api/{}/", route.pattern)
        }
        Space::Api => format!("/api/v1/{}/", route.pattern),
        Space::Root if route.pattern.contains('/') => format!("/{}/", route.pattern),
        Space::Root => format!("/{}", route.pattern),
    }
}

fn method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
        Verb::Patch => HttpMethod::Patch,
        Verb::Delete => HttpMethod::Delete,
    }
}

fn json(schema: RefOr<Schema>) -> Content {
    Content::new(Some(schema))
}

fn error_ref() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("Error"))
}

fn error_response(description: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", json(error_ref()))
        .build()
}

/// `{count, next, previous, results: [item]}`.
fn page_of(item: RefOr<Schema>) -> RefOr<Schema> {
    let link = || {
        ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
                Type::String,
                Type::Null,
            ]))
            .format(Some(SchemaFormat::Custom("uri".into())))
    };
    ObjectBuilder::new()
        .property(
            "count",
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0)),
        )
        .property("next", link())
        .property("previous", link())
        .property("results", ArrayBuilder::new().items(item))
        .required("count")
        .required("next")
        .required("previous")
        .required("results")
        .into()
}

/// A shape's schema by reference, registering it and what it refers to as components.
fn register(shape: Shape, schemas: &mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema> {
    schemas.extend(shape.nested);
    let name = shape.name.into_owned();
    schemas.push((name.clone(), shape.schema));
    RefOr::Ref(Ref::from_schema_name(name))
}

fn operation_id(route: &Route) -> String {
    format!("{:?}", route.endpoint)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn build(routes: &[Route]) -> OpenApi {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut paths = PathsBuilder::new();
    for route in routes {
        let Some(doc) = super::api::doc(route.endpoint) else {
            continue;
        };
        let mut op = OperationBuilder::new()
            .tag(doc.tag)
            .summary(Some(doc.summary))
            .operation_id(Some(operation_id(route)));
        for segment in route.pattern.split('/') {
            let (name, schema) = match segment {
                "{id}" | "{key_id}" => (
                    &segment[1..segment.len() - 1],
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .minimum(Some(1)),
                ),
                "{token}" => ("token", ObjectBuilder::new().schema_type(Type::String)),
                _ => continue,
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(schema)),
            );
        }
        for (name, description, kind) in doc.query {
            let kind = match *kind {
                "integer" => Type::Integer,
                "boolean" => Type::Boolean,
                _ => Type::String,
            };
            op = op.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some(*description))
                    .schema(Some(ObjectBuilder::new().schema_type(kind))),
            );
        }
        if let Some(sortable) = doc.sortable {
            let fields: Vec<&str> = sortable.fields.iter().map(|(name, _)| *name).collect();
            let orders: Vec<String> = fields
                .iter()
                .flat_map(|f| [f.to_string(), format!("-{f}")])
                .collect();
            op = op
                .parameter(
                    ParameterBuilder::new()
                        .name("search")
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(format!(
                            "entries with this text in {} (any case; at most 200 characters)",
                            sortable.searched
                        )))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
                )
                .parameter(
                    ParameterBuilder::new()
                        .name("ordering")
                        .parameter_in(ParameterIn::Query)
                        .required(Required::False)
                        .description(Some(format!(
                            "the order: {} (`-` before it for the reverse)",
                            fields.join(", ")
                        )))
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .enum_values(Some(orders)),
                        )),
                );
        }
        if let Some(request) = doc.request {
            let schema = register(request(), &mut schemas);
            let required = if doc.request_optional || route.body == BodyKind::OptionalJson {
                Required::False
            } else {
                Required::True
            };
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(required))
                    .content("application/json", json(schema))
                    .build(),
            ));
        }
        op = match doc.answer {
            Answer::Json(status, shape) => {
                let schema = register(shape(), &mut schemas);
                let response = ResponseBuilder::new()
                    .description(doc.summary)
                    .content("application/json", json(schema))
                    .build();
                op.response(status.to_string(), response)
            }
            Answer::List(shape) => {
                let item = register(shape(), &mut schemas);
                let response = ResponseBuilder::new()
                    .description("One page; past the last page, 404")
                    .content("application/json", json(page_of(item)))
                    .build();
                op.response("200", response)
            }
            Answer::NoContent => {
                op.response("204", ResponseBuilder::new().description("Done").build())
            }
            Answer::Redirect(to) => op.response(
                "302",
                ResponseBuilder::new()
                    .description(format!("Found: Location is {to}"))
                    .build(),
            ),
            Answer::Export(shape) => {
                let item = register(shape(), &mut schemas);
                op.response(
                    "200",
                    ResponseBuilder::new()
                        .description("Every matching entry")
                        .content(
                            "application/json",
                            json(ArrayBuilder::new().items(item.clone()).into()),
                        )
                        .content("application/jsonl", json(item))
                        .content(
                            "text/csv",
                            json(ObjectBuilder::new().schema_type(Type::String).into()),
                        )
                        .build(),
                )
            }
        };
        for (status, what) in doc.errors {
            op = op.response(status.to_string(), error_response(what));
        }
        if route.body != BodyKind::NoBody {
            op = op
                .response(
                    "400",
                    error_response("The body is not valid; `errors` names the fields"),
                )
                .response(
                    "413",
                    error_response("The body is larger than server.max_body_bytes"),
                )
                .response("415", error_response("The body is not application/json"));
        } else if !doc.query.is_empty() {
            op = op.response("400", error_response("A query parameter is not valid"));
        }
        if route.pattern.contains('{') || matches!(doc.answer, Answer::List(_)) {
            op = op.response(
                "404",
                error_response("No such object in your organization, or a page past the end"),
            );
        }
        let mut description = String::new();
        match route.guard {
            Guard::Public => {}
            guard => {
                op = op
                    .security(SecurityRequirement::new("jwt", Vec::<String>::new()))
                    .response(
                        "401",
                        error_response(
                            "No credential, or one that is not valid (revoked, expired)",
                        ),
                    )
                    .response(
                        "429",
                        error_response("The hourly request limit; Retry-After says when"),
                    )
                    .response(
                        "503",
                        error_response(
                            "This server cannot vouch for the live state now; Retry-After",
                        ),
                    );
                match guard {
                    Guard::Interactive => {
                        description
                            .push_str("Needs an interactive session (a JWT), not an API key.");
                        op = op.response(
                            "403",
                            error_response(
                                "interactive_session_required; password_change_required \
                                 for a session opened with a temporary password; \
                                 mfa_enrollment_required for one whose user must set up MFA",
                            ),
                        );
                    }
                    Guard::InteractiveEvenTemporary => {
                        description.push_str(
                            "Needs an interactive session (a JWT), not an API key; open to a \
                             session opened with a temporary password.",
                        );
                        op = op.response("403", error_response("interactive_session_required"));
                    }
                    Guard::InteractiveEvenRestricted => {
                        description.push_str(
                            "Needs an interactive session (a JWT), not an API key; open to a \
                             session opened with a temporary password or before required MFA.",
                        );
                        op = op.response("403", error_response("interactive_session_required"));
                    }
                    Guard::MfaEnrolment => {
                        description.push_str(
                            "Needs an interactive session (a JWT), not an API key; open to a \
                             session whose user must set up MFA before anything else.",
                        );
                        op = op.response("403", error_response("interactive_session_required"));
                    }
                    Guard::InteractiveAdmin => {
                        description.push_str(
                            "Needs an interactive session (a JWT) of an administrator or the owner.",
                        );
                        op = op.response(
                            "403",
                            error_response("interactive_session_required or permission_denied"),
                        );
                    }
                    Guard::Permission(p) => {
                        description.push_str(&format!(
                            "Needs the `{}` permission of the caller's role; a scoped API key must carry it.",
                            p.as_str()
                        ));
                        op = op
                            .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
                            .security(SecurityRequirement::new(
                                "api_key_header",
                                Vec::<String>::new(),
                            ))
                            .response(
                                "403",
                                error_response("permission_denied or insufficient_scope"),
                            );
                    }
                    _ => {
                        op = op
                            .security(SecurityRequirement::new("api_key", Vec::<String>::new()))
                            .security(SecurityRequirement::new(
                                "api_key_header",
                                Vec::<String>::new(),
                            ));
                    }
                }
            }
        }
        if !description.is_empty() {
            op = op.description(Some(description));
        }
        paths = paths.path(
            documented_path(route),
            PathItem::new(method(route.verb), op.build()),
        );
    }
    let mut components = ComponentsBuilder::new()
        .schema("Error", super::reply::ErrorBody::schema())
        .security_scheme(
            "jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from POST /api/auth/login/"))
                    .build(),
            ),
        )
        .security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("claribi_key_...")
                    .description(Some(
                        "An API key as a bearer token (also `Authorization: Api-Key ...`)",
                    ))
                    .build(),
            ),
        )
        .security_scheme(
            "api_key_header",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    for (name, schema) in schemas {
        components = components.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("clariBI API")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Every API route is served under both /api/ and /api/v1/, with or without \
                     the final slash. Errors are `{error, message, status}` with the code of the \
                     contract's table.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .build()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use warp::http::Method;

    use super::*;
    use crate::http::router::Match;

    fn verb_name(verb: Verb) -> &'static str {
        match verb {
            Verb::Get => "get",
            Verb::Post => "post",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
        }
    }

    fn document() -> serde_json::Value {
        serde_json::from_str(&DOCUMENT).expect("the document is JSON")
    }

    #[test]
    fn the_document_and_the_route_table_agree_both_ways() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("path item").keys() {
                documented.insert((method.clone(), path.clone()));
            }
        }
        // Every route of the API is in the document...
        let mut routed = BTreeSet::new();
        for route in super::super::ROUTES {
            if crate::http::api::doc(route.endpoint).is_some() {
                routed.insert((verb_name(route.verb).to_string(), documented_path(route)));
            }
        }
        assert_eq!(documented, routed);
        // ...and every operation of the document is answered by that route, at that path.
        for (method, path) in &documented {
            let concrete = path
                .replace("{id}", "7")
                .replace("{key_id}", "8")
                .replace("{token}", "abc");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
            match super::super::ROUTER.find(&method, &concrete) {
                Match::Found(route, _) => assert_eq!(documented_path(route), *path),
                _ => panic!("{method} {concrete} is in the document but not routed"),
            }
        }
        // The routes left out are the web pages and their files, not API: pages a browser
        // GETs outside `/api/` and `/public/`.
        for route in super::super::ROUTES {
            if crate::http::api::doc(route.endpoint).is_none() {
                assert!(
                    route.space == Space::Root
                        && route.verb == Verb::Get
                        && route.guard == Guard::Public
                        && !route.pattern.starts_with("public/"),
                    "{} is left out of the document",
                    route.pattern
                );
            }
        }
    }

    #[test]
    fn every_reference_resolves_and_every_guarded_route_names_its_credentials() {
        let doc = document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().expect("schemas");
        for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = piece.split('"').next().unwrap_or_default();
            assert!(schemas.contains_key(name), "no schema {name}");
        }
        let login = &doc["paths"]["/api/auth/login/"]["post"];
        assert!(login.get("security").is_none());
        assert!(login["requestBody"]["required"].as_bool().unwrap_or(false));
        let list = &doc["paths"]["/api/v1/reports/"]["get"];
        let names: Vec<_> = list["security"]
            .as_array()
            .expect("security")
            .iter()
            .flat_map(|s| s.as_object().expect("requirement").keys().cloned())
            .collect();
        assert_eq!(names, ["jwt", "api_key", "api_key_header"]);
        assert!(list["responses"]["403"].is_object());
        // Key management takes a session, never a key.
        let create = &doc["paths"]["/api/auth/api-keys/"]["post"];
        assert_eq!(create["security"], serde_json::json!([{"jwt": []}]));
        assert_eq!(
            create["responses"]["201"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/KeyDto"
        );
    }
}
