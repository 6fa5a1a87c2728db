//! The OpenAPI document (`openapi.yaml`) against the wire types, so that neither can drift from
//! the other:
//!
//! - every component schema is a Rust wire type (or enum) and every wire type has a schema;
//! - every example of every request and response body is valid under its schema, reads into
//!   the Rust type, serialises back to exactly itself, and passes [`Validate`];
//! - every value the `oc_protocol::testing` strategies generate is valid under its schema made
//!   strict (`unevaluatedProperties: false` on every object, in memory only), so that a field
//!   renamed on one side only fails; and a field the schema calls optional really is optional
//!   in Rust (dropping it round-trips).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;

use jsonschema::Validator;
use oc_protocol::validate::{is_call_id, is_e164, is_uuid, page_size, parse_sip_uri};
use oc_protocol::{
    Assignee, AssigneeType, AssignmentState, AudioCodec, CallDurationSource, CallLeg, CallLegBatch,
    CallLegsAccepted, CallRecord, CarrierNumberView, Direction, DriftStats, DurationReport,
    DurationReportBatch, DurationReportResponse, FieldError, MinutesTotals,
    NumberAssignmentNotification, NumberEvent, NumberEventType, NumberUsage, Page, Problem,
    ProblemKind, QualityRecord, ReconClass, ReconCounts, ReconFlagCounts, ReconciliationItem,
    ReconciliationSummary, RejectedRecord, StreamDirection, TeamsNumber, Validate, graph,
    parse_timestamp, testing,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";
const SCHEMA_PREFIX: &str = "#/components/schemas/";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The four string forms of the protocol; every `pattern` of the document is one of them.
const E164: &str = r"^\+[1-9][0-9]{7,14}$";
const UUID: &str = "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$";
const TIMESTAMP: &str = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$";
const SIP_URI: &str = r"^sip:\+[1-9][0-9]{7,14}@(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?)(:[0-9]{1,5})?;user=phone$";

// ------------------------------------------------------------------------------------------
// The document

fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let path = Path::new(MANIFEST_DIR).join("openapi.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_norway::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()))
    })
}

fn component_schemas() -> &'static Map<String, Value> {
    document()["components"]["schemas"]
        .as_object()
        .expect("openapi.yaml has components.schemas")
}

/// Follows a local `$ref` (`#/...`) within the document.
fn resolve(reference: &str) -> &'static Value {
    let pointer = reference
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("{reference} is not a local reference"));
    document()
        .pointer(pointer)
        .unwrap_or_else(|| panic!("{reference} points at nothing in openapi.yaml"))
}

/// The component schema a media type or property names with `$ref`.
fn schema_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix(SCHEMA_PREFIX)
}

fn is_object_schema(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("object")
}

// ------------------------------------------------------------------------------------------
// Validators built from the document's schemas

/// Sets `unevaluatedProperties: false` on every object schema below `node`.
fn forbid_unevaluated_properties(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if map.get("type").and_then(Value::as_str) == Some("object") {
                map.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
            }
            map.values_mut().for_each(forbid_unevaluated_properties);
        }
        Value::Array(items) => items.iter_mut().for_each(forbid_unevaluated_properties),
        _ => {}
    }
}

fn build_validators(strict: bool) -> BTreeMap<String, Validator> {
    let mut schemas = Value::Object(component_schemas().clone());
    if strict {
        forbid_unevaluated_properties(&mut schemas);
    }
    component_schemas()
        .keys()
        .map(|name| {
            let root = json!({
                "$schema": DIALECT,
                "components": {"schemas": schemas},
                "$ref": format!("{SCHEMA_PREFIX}{name}"),
            });
            let validator = jsonschema::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("schema {name} does not compile: {e}"));
            (name.clone(), validator)
        })
        .collect()
}

fn validator(name: &str, strict: bool) -> &'static Validator {
    static LAX: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    static STRICT: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let all = if strict {
        STRICT.get_or_init(|| build_validators(true))
    } else {
        LAX.get_or_init(|| build_validators(false))
    };
    all.get(name)
        .unwrap_or_else(|| panic!("openapi.yaml has no component schema {name}"))
}

/// Every error of `instance` under the schema `name`, each with its instance path.
fn schema_errors(name: &str, strict: bool, instance: &Value) -> Vec<String> {
    validator(name, strict)
        .iter_errors(instance)
        .map(|e| {
            format!(
                "at instance path \"{}\": {e} (schema path {})",
                e.instance_path().as_str(),
                e.schema_path().as_str()
            )
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Component schema name -> Rust type

type RoundTrip = fn(&Value) -> Result<Value, String>;
type Check = fn(&Value) -> Result<(), String>;

/// An object component schema and the Rust type it describes.
struct WireType {
    schema: &'static str,
    /// Reads a value into the Rust type and serialises it back.
    round_trip: RoundTrip,
    /// Runs [`Validate`], for the types that implement it.
    validate: Option<Check>,
}

/// An enum component schema and the Rust enum it describes.
struct WireEnum {
    schema: &'static str,
    round_trip: RoundTrip,
    wire_names: fn() -> Vec<&'static str>,
}

fn round_trip<T: Serialize + DeserializeOwned>(value: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| {
        format!(
            "does not deserialise into {}: {e}",
            std::any::type_name::<T>()
        )
    })?;
    serde_json::to_value(&typed).map_err(|e| format!("does not serialise back: {e}"))
}

fn check<T: DeserializeOwned + Validate>(value: &Value) -> Result<(), String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    typed.validate().map_err(|e| e.to_string())
}

macro_rules! wire {
    ($schema:literal => $t:ty) => {
        WireType {
            schema: $schema,
            round_trip: round_trip::<$t>,
            validate: None,
        }
    };
    ($schema:literal => $t:ty, validated) => {
        WireType {
            schema: $schema,
            round_trip: round_trip::<$t>,
            validate: Some(check::<$t>),
        }
    };
}

macro_rules! wire_enum {
    ($t:ident) => {
        WireEnum {
            schema: stringify!($t),
            round_trip: round_trip::<$t>,
            wire_names: || $t::ALL.iter().map(|v| v.as_str()).collect(),
        }
    };
}

fn wire_types() -> Vec<WireType> {
    vec![
        wire!("NumberAssignmentNotification" => NumberAssignmentNotification, validated),
        wire!("NumberEvent" => NumberEvent, validated),
        wire!("Assignee" => Assignee),
        wire!("CarrierNumberView" => CarrierNumberView, validated),
        wire!("TeamsNumber" => TeamsNumber, validated),
        wire!("CallRecord" => CallRecord, validated),
        wire!("QualityRecord" => QualityRecord, validated),
        wire!("DurationReportBatch" => DurationReportBatch, validated),
        wire!("DurationReport" => DurationReport, validated),
        wire!("DurationReportResponse" => DurationReportResponse),
        wire!("RejectedRecord" => RejectedRecord),
        wire!("CallLegBatch" => CallLegBatch, validated),
        wire!("CallLeg" => CallLeg, validated),
        wire!("CallLegsAccepted" => CallLegsAccepted),
        wire!("ReconciliationSummary" => ReconciliationSummary, validated),
        wire!("ReconCounts" => ReconCounts),
        wire!("ReconFlagCounts" => ReconFlagCounts),
        wire!("DriftStats" => DriftStats),
        wire!("MinutesTotals" => MinutesTotals),
        wire!("ReconciliationItem" => ReconciliationItem, validated),
        wire!("Problem" => Problem),
        wire!("FieldError" => FieldError),
        wire!("TeamsNumberPage" => Page<TeamsNumber>, validated),
        wire!("CallRecordPage" => Page<CallRecord>, validated),
        wire!("QualityRecordPage" => Page<QualityRecord>, validated),
        wire!("ReconciliationItemPage" => Page<ReconciliationItem>, validated),
        wire!("PstnCallLogRow" => graph::PstnCallLogRow),
        wire!("PstnCallLogPage" => graph::GraphPage<graph::PstnCallLogRow>),
        wire!("GraphError" => graph::GraphError),
        wire!("GraphErrorDetail" => graph::GraphErrorDetail),
    ]
}

fn wire_enums() -> Vec<WireEnum> {
    vec![
        wire_enum!(NumberEventType),
        wire_enum!(NumberUsage),
        wire_enum!(AssigneeType),
        wire_enum!(AssignmentState),
        wire_enum!(Direction),
        wire_enum!(CallDurationSource),
        wire_enum!(StreamDirection),
        wire_enum!(AudioCodec),
        wire_enum!(ReconClass),
    ]
}

fn wire_type(schema: &str) -> WireType {
    wire_types()
        .into_iter()
        .find(|w| w.schema == schema)
        .unwrap_or_else(|| panic!("no Rust type is mapped to the component schema {schema}"))
}

/// Where two JSON values differ, as JSON pointers with both sides.
fn differences(at: &str, document: &Value, rust: &Value, out: &mut Vec<String>) {
    match (document, rust) {
        (Value::Object(a), Value::Object(b)) => {
            for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
                let here = format!("{at}/{key}");
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differences(&here, x, y, out),
                    (Some(x), None) => out.push(format!(
                        "{here}: the document has {x}, the Rust type drops it"
                    )),
                    (None, Some(y)) => out.push(format!(
                        "{here}: absent in the document, the Rust type writes {y}"
                    )),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{at}/{i}"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!(
            "{}: the document has {a}, the Rust type writes {b}",
            if at.is_empty() { "(root)" } else { at }
        )),
        _ => {}
    }
}

fn describe_differences(document: &Value, rust: &Value) -> String {
    let mut out = Vec::new();
    differences("", document, rust, &mut out);
    out.join("\n    ")
}

// ------------------------------------------------------------------------------------------
// (a) and (b): the document, and its schemas against the Rust types

#[test]
fn document_is_openapi_3_1() {
    let version = document()["openapi"]
        .as_str()
        .expect("openapi.yaml has an `openapi` version string");
    assert!(
        version.starts_with("3.1"),
        "openapi.yaml is OpenAPI {version}, expected 3.1.x"
    );
    assert!(document()["info"]["description"].is_string());
}

#[test]
fn component_schemas_and_rust_types_cover_each_other() {
    let mut object_schemas = BTreeSet::new();
    let mut enum_schemas = BTreeSet::new();
    for (name, schema) in component_schemas() {
        if is_object_schema(schema) {
            object_schemas.insert(name.as_str());
        } else if schema.get("enum").is_some() {
            enum_schemas.insert(name.as_str());
        } else {
            panic!("component schema {name} is neither an object nor an enum");
        }
    }
    let types: BTreeSet<_> = wire_types().iter().map(|w| w.schema).collect();
    assert_eq!(
        object_schemas.difference(&types).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "object schemas of openapi.yaml without a Rust type in the table"
    );
    assert_eq!(
        types.difference(&object_schemas).collect::<Vec<_>>(),
        Vec::<&&str>::new(),
        "Rust types of the table without an object schema in openapi.yaml"
    );
    let enums: BTreeSet<_> = wire_enums().iter().map(|w| w.schema).collect();
    assert_eq!(
        enum_schemas, enums,
        "enum schemas of openapi.yaml against the Rust enums of the table"
    );
    for wire in wire_enums() {
        let schema = &component_schemas()[wire.schema];
        assert_eq!(
            schema["type"], "string",
            "enum schema {} is not of type string",
            wire.schema
        );
        let documented: BTreeSet<&str> = schema["enum"]
            .as_array()
            .expect("enum is an array")
            .iter()
            .map(|v| v.as_str().expect("enum values are strings"))
            .collect();
        let rust: BTreeSet<&str> = (wire.wire_names)().into_iter().collect();
        assert_eq!(
            documented, rust,
            "the values of enum schema {} against the Rust enum's wire names",
            wire.schema
        );
        for name in documented {
            let value = Value::from(name);
            let back = (wire.round_trip)(&value)
                .unwrap_or_else(|e| panic!("{}: {name:?} {e}", wire.schema));
            assert_eq!(back, value, "{}: {name:?} round trip", wire.schema);
        }
    }
}

#[test]
fn object_schemas_are_open_and_require_only_their_properties() {
    fn no_closed_objects(at: &str, node: &Value) {
        match node {
            Value::Object(map) => {
                assert!(
                    map.get("additionalProperties") != Some(&Value::Bool(false))
                        && map.get("unevaluatedProperties") != Some(&Value::Bool(false)),
                    "{at} forbids unknown members, but readers must ignore them \
                     (forward compatibility)"
                );
                for (key, value) in map {
                    no_closed_objects(&format!("{at}/{key}"), value);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    no_closed_objects(&format!("{at}/{i}"), item);
                }
            }
            _ => {}
        }
    }
    no_closed_objects("#", document());
    for (name, schema) in component_schemas() {
        if !is_object_schema(schema) {
            continue;
        }
        let properties = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("object schema {name} has no properties"));
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().expect("required names are strings");
            assert!(
                properties.contains_key(required),
                "schema {name} requires {required}, which it does not declare"
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// (c) every example of every body

/// One media type of a request body or response, with its examples.
struct Site {
    /// Where it is, for messages: `POST /oc/v1/call-durations 200 application/json`.
    location: String,
    media_type: String,
    schema: String,
    examples: Vec<(String, Value)>,
    /// The statuses it answers with (none for a request body or an unused response).
    statuses: BTreeSet<u16>,
    is_request: bool,
}

fn media_sites(location: &str, holder: &Value, status: Option<u16>, is_request: bool) -> Vec<Site> {
    let Some(content) = holder.get("content").and_then(Value::as_object) else {
        return Vec::new();
    };
    assert!(!content.is_empty(), "{location} has an empty content map");
    content
        .iter()
        .map(|(media_type, media)| {
            let here = format!("{location} {media_type}");
            let schema = schema_name(&media["schema"])
                .unwrap_or_else(|| {
                    panic!("{here}: the schema must be a $ref to a component schema")
                })
                .to_owned();
            let examples = media
                .get("examples")
                .and_then(Value::as_object)
                .map(|examples| {
                    examples
                        .iter()
                        .map(|(name, example)| {
                            let example = match example.get("$ref").and_then(Value::as_str) {
                                Some(reference) => resolve(reference),
                                None => example,
                            };
                            let value = example
                                .get("value")
                                .unwrap_or_else(|| panic!("{here}: example {name} has no `value`"));
                            (name.clone(), value.clone())
                        })
                        .collect()
                })
                .unwrap_or_default();
            Site {
                location: here,
                media_type: media_type.clone(),
                schema,
                examples,
                statuses: status.into_iter().collect(),
                is_request,
            }
        })
        .collect()
}

/// Every media type of every request body and response of the document: those of the paths,
/// and the reusable responses of `components` (some, like 405, belong to no one operation).
fn sites() -> Vec<Site> {
    let mut by_location: BTreeMap<String, Site> = BTreeMap::new();
    let mut add = |sites: Vec<Site>| {
        for site in sites {
            match by_location.get_mut(&site.location) {
                Some(known) => known.statuses.extend(site.statuses),
                None => {
                    by_location.insert(site.location.clone(), site);
                }
            }
        }
    };
    let paths = document()["paths"]
        .as_object()
        .expect("openapi.yaml has paths");
    for (path, item) in paths {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let operation_name = format!("{} {path}", method.to_uppercase());
            if let Some(body) = operation.get("requestBody") {
                let (location, body) = match body.get("$ref").and_then(Value::as_str) {
                    Some(reference) => (reference.to_owned(), resolve(reference)),
                    None => (format!("{operation_name} request"), body),
                };
                add(media_sites(&location, body, None, true));
            }
            let responses = operation["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{operation_name} has no responses"));
            for (code, response) in responses {
                let status: u16 = code.parse().unwrap_or_else(|_| {
                    panic!("{operation_name}: response {code} is not a status")
                });
                let (location, response) = match response.get("$ref").and_then(Value::as_str) {
                    Some(reference) => (reference.to_owned(), resolve(reference)),
                    None => (format!("{operation_name} {code}"), response),
                };
                add(media_sites(&location, response, Some(status), false));
            }
        }
    }
    let reusable = document()["components"]["responses"]
        .as_object()
        .into_iter()
        .flatten();
    for (name, response) in reusable {
        add(media_sites(
            &format!("#/components/responses/{name}"),
            response,
            None,
            false,
        ));
    }
    by_location.into_values().collect()
}

#[test]
fn every_example_is_valid_typed_canonical_and_sound() {
    let mut failures = Vec::new();
    let mut examples = 0;
    let mut schemas_exemplified = BTreeSet::new();
    let mut problem_kinds = BTreeSet::new();
    let sites = sites();
    for site in &sites {
        if site.examples.is_empty() {
            failures.push(format!("{}: no example", site.location));
        }
        let is_problem = site.media_type == "application/problem+json";
        // Graph's paths answer errors in Graph's shape (PROTOCOL.md 3.6), as Graph does.
        let is_graph_error = site.schema == "GraphError" && site.media_type == "application/json";
        let is_error = site.statuses.iter().any(|s| *s >= 400)
            || (site.statuses.is_empty() && !site.is_request && is_problem);
        if !is_graph_error && (is_error != is_problem || (is_problem && site.schema != "Problem")) {
            failures.push(format!(
                "{}: error answers (and only they) must be application/problem+json with the \
                 Problem schema; this one is {} with {}",
                site.location, site.media_type, site.schema
            ));
        }
        if !is_problem && site.media_type != "application/json" {
            failures.push(format!("{}: bodies are application/json", site.location));
        }
        let wire = wire_type(&site.schema);
        for (name, value) in &site.examples {
            examples += 1;
            schemas_exemplified.insert(site.schema.clone());
            let here = format!(
                "{} example `{name}` (schema {})",
                site.location, site.schema
            );
            let errors = schema_errors(&site.schema, false, value);
            if !errors.is_empty() {
                failures.push(format!(
                    "{here} is invalid under its schema:\n    {}",
                    errors.join("\n    ")
                ));
            }
            match (wire.round_trip)(value) {
                Err(e) => failures.push(format!("{here} {e}")),
                Ok(back) if back != *value => failures.push(format!(
                    "{here} is not canonical: the Rust type {} serialises it otherwise:\n    {}",
                    site.schema,
                    describe_differences(value, &back)
                )),
                Ok(_) => {}
            }
            if let (Some(validate), false) = (wire.validate, is_problem)
                && let Err(e) = validate(value)
            {
                failures.push(format!("{here} fails Validate: {e}"));
            }
            if is_problem {
                match check_problem(value, &site.statuses) {
                    Ok(kind) => {
                        problem_kinds.insert(kind.type_uri());
                    }
                    Err(e) => failures.push(format!("{here}: {e}")),
                }
            }
        }
    }
    let unused_kinds: Vec<_> = ProblemKind::ALL
        .iter()
        .map(|k| k.type_uri())
        .filter(|uri| !problem_kinds.contains(uri))
        .collect();
    if !unused_kinds.is_empty() {
        failures.push(format!(
            "no example shows the problem types {unused_kinds:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} of {examples} examples or sites of openapi.yaml fail:\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
    println!(
        "openapi.yaml: {} component schemas, {} request/response media types, {examples} \
         examples, valid, canonical and sound; schemas exemplified: {}",
        component_schemas().len(),
        sites.len(),
        schemas_exemplified.len()
    );
}

/// A problem example names one of [`ProblemKind`]'s types, with its title and status, and the
/// status of the response it is documented under.
fn check_problem(value: &Value, statuses: &BTreeSet<u16>) -> Result<ProblemKind, String> {
    let problem: Problem = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let kind = ProblemKind::ALL
        .into_iter()
        .find(|k| k.type_uri() == problem.kind)
        .ok_or_else(|| format!("type {} is not one of ProblemKind's", problem.kind))?;
    if problem.title != kind.title() || problem.status != kind.status() {
        return Err(format!(
            "a {} problem has title {:?} and status {}, expected {:?} and {}",
            problem.kind,
            problem.title,
            problem.status,
            kind.title(),
            kind.status()
        ));
    }
    if let Some(other) = statuses.iter().find(|s| **s != problem.status) {
        return Err(format!(
            "a problem of status {} documented under response {other}",
            problem.status
        ));
    }
    Ok(kind)
}

// ------------------------------------------------------------------------------------------
// Paths, sides, security and parameters against the code

#[test]
fn paths_sides_and_security_agree_with_the_code() {
    use oc_protocol::paths;
    let carrier_number = format!("{}{{telephoneNumber}}", paths::CARRIER_NUMBER_PREFIX);
    let graph_path = format!(
        "{}(fromDateTime={{fromDateTime}},toDateTime={{toDateTime}})",
        paths::GRAPH_PSTN_CALLS
    );
    let expected: BTreeMap<&str, (&str, &str, &str)> = [
        (
            paths::NUMBER_ASSIGNMENTS,
            ("post", "carrier", "OC-Signature"),
        ),
        (carrier_number.as_str(), ("get", "carrier", "OC-Signature")),
        (paths::CALL_LEGS, ("post", "carrier", "OC-Signature")),
        (paths::NUMBERS, ("get", "teams", "bearerToken")),
        (paths::CDRS_DELTA, ("get", "teams", "bearerToken")),
        (paths::CDRS, ("get", "teams", "bearerToken")),
        (paths::QUALITY_DELTA, ("get", "teams", "bearerToken")),
        (paths::CALL_DURATIONS, ("post", "teams", "bearerToken")),
        (paths::RECONCILIATION, ("get", "teams", "bearerToken")),
        (paths::RECONCILIATION_ITEMS, ("get", "teams", "bearerToken")),
        (graph_path.as_str(), ("get", "teams", "bearerToken")),
    ]
    .into_iter()
    .collect();
    let documented = document()["paths"].as_object().expect("paths");
    assert_eq!(
        documented
            .keys()
            .map(String::as_str)
            .collect::<BTreeSet<_>>(),
        expected.keys().copied().collect::<BTreeSet<_>>(),
        "the paths of openapi.yaml against oc_protocol::paths"
    );
    for (path, (method, side, scheme)) in expected {
        let item = &documented[path];
        assert_eq!(item["x-served-by"], side, "{path}: x-served-by");
        let methods: Vec<_> = METHODS.iter().filter(|m| item.get(**m).is_some()).collect();
        assert_eq!(methods, [&method], "{path}: methods");
        let operation = &item[method];
        // The certification hooks are signed by the harness, but a carrier need not check:
        // signed or not are both allowed (`{}` is the empty requirement).
        let hook = path == paths::CALL_LEGS || path == carrier_number.as_str();
        let security = if hook {
            json!([{ scheme: [] }, {}])
        } else {
            json!([{ scheme: [] }])
        };
        assert_eq!(operation["security"], security, "{path}: security");
        let tag = if side == "carrier" {
            "Carrier API"
        } else {
            "Teams API"
        };
        assert!(
            operation["tags"]
                .as_array()
                .is_some_and(|tags| tags.contains(&Value::from(tag))),
            "{path}: tagged {tag}"
        );
        let responses = operation["responses"].as_object().expect("responses");
        if let Some(throttled) = responses.get("429") {
            let throttled = match throttled.get("$ref").and_then(Value::as_str) {
                Some(reference) => resolve(reference),
                None => throttled,
            };
            assert!(
                throttled["headers"].get("Retry-After").is_some(),
                "{path}: 429 without a Retry-After header"
            );
        }
        assert!(
            responses.contains_key("401") && responses.contains_key("500"),
            "{path}: every operation documents 401 and 500"
        );
    }
    let schemes = &document()["components"]["securitySchemes"];
    assert_eq!(schemes["bearerToken"]["type"], "http");
    assert_eq!(schemes["bearerToken"]["scheme"], "bearer");
    assert_eq!(schemes["OC-Signature"]["type"], "apiKey");
    assert_eq!(schemes["OC-Signature"]["in"], "header");
    assert_eq!(
        schemes["OC-Signature"]["name"],
        oc_protocol::signing::SIGNATURE_HEADER
    );
    let key = document()["paths"][paths::CALL_DURATIONS]["post"]["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["in"] == "header"))
        .expect("POST /oc/v1/call-durations has a header parameter");
    assert_eq!(key["name"], oc_protocol::IDEMPOTENCY_KEY_HEADER);
    assert_eq!(key["required"], true);
    for (raw, ok) in [
        (String::new(), false),
        ("k".to_owned(), true),
        ("k".repeat(128), true),
        ("é".repeat(128), true),
        ("k".repeat(129), false),
    ] {
        assert_eq!(
            string_schema_accepts(&key["schema"], &raw),
            oc_protocol::validate::check_idempotency_key(Some(&raw)).is_ok(),
            "Idempotency-Key schema on a key of {} characters",
            raw.chars().count()
        );
        assert_eq!(
            oc_protocol::validate::check_idempotency_key(Some(&raw)).is_ok(),
            ok
        );
    }
    let page_size_schema = &document()["components"]["parameters"]["PageSize"]["schema"];
    assert_eq!(page_size_schema["default"], page_size::DEFAULT);
    assert_eq!(page_size_schema["minimum"], page_size::MIN);
    assert_eq!(page_size_schema["maximum"], page_size::MAX);
}

fn string_schema_accepts(schema: &Value, value: &str) -> bool {
    let mut schema = schema.clone();
    schema["$schema"] = Value::from(DIALECT);
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|e| panic!("{schema} does not compile: {e}"))
        .is_valid(&Value::from(value))
}

/// Every `pattern` of the document, with where it is.
fn patterns(at: &str, node: &Value, out: &mut Vec<(String, String)>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(pattern)) = map.get("pattern") {
                out.push((at.to_owned(), pattern.clone()));
            }
            for (key, value) in map {
                patterns(&format!("{at}/{key}"), value, out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                patterns(&format!("{at}/{i}"), item, out);
            }
        }
        _ => {}
    }
}

#[test]
fn patterns_agree_with_the_code() {
    let mut found = Vec::new();
    patterns("#", document(), &mut found);
    for (at, pattern) in &found {
        assert!(
            [E164, UUID, TIMESTAMP, SIP_URI].contains(&pattern.as_str()),
            "{at}: pattern {pattern} is not one of the protocol's four forms"
        );
    }
    let string = |pattern: &str, format: Option<&str>| {
        let mut schema = json!({"type": "string", "pattern": pattern});
        if let Some(format) = format {
            schema["format"] = Value::from(format);
        }
        schema
    };
    let e164 = string(E164, None);
    for candidate in [
        "+14255550100",
        "+12345678",
        "+123456789012345",
        "+1234567",
        "+1234567890123456",
        "+04255550100",
        "14255550100",
        "+1425555010a",
        "+1 425 555 0100",
        "+",
        "+14255550100\n",
    ] {
        assert_eq!(
            string_schema_accepts(&e164, candidate),
            is_e164(candidate),
            "E.164 pattern on {candidate:?}"
        );
    }
    let uuid = string(UUID, Some("uuid"));
    for candidate in [
        "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00",
        "0B6E8A52-3C1D-4F7E-9A2B-5D4C3B2A1F00",
        "0b6e8a523c1d4f7e9a2b5d4c3b2a1f00",
        "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0",
        "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f0g",
        "{b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00}",
    ] {
        assert_eq!(
            string_schema_accepts(&uuid, candidate),
            is_uuid(candidate),
            "UUID pattern on {candidate:?}"
        );
    }
    // The pattern fixes the form; `format: date-time` rejects what is not a real date and time.
    // (A leap second, `23:59:60`, is valid RFC 3339 but not a protocol timestamp; it is left out.)
    let timestamp = string(TIMESTAMP, Some("date-time"));
    for candidate in [
        "2026-11-26T09:15:02.125Z",
        "2024-02-29T00:00:00.000Z",
        "2026-02-29T00:00:00.000Z",
        "2026-02-30T00:00:00.000Z",
        "2026-13-01T00:00:00.000Z",
        "2026-11-26T24:00:00.000Z",
        "2026-11-26T09:15:02Z",
        "2026-11-26T09:15:02.1250Z",
        "2026-11-26T09:15:02.125+00:00",
        "2026-11-26 09:15:02.125Z",
        "2026-11-26T09:15:02.125z",
    ] {
        assert_eq!(
            string_schema_accepts(&timestamp, candidate),
            parse_timestamp(candidate).is_ok(),
            "timestamp pattern and date-time format on {candidate:?}"
        );
    }
    // The SIP URI pattern checks the form; the code also checks the port's range (1 to 65535),
    // that an IPv6 reference has a colon, the host's total length, and (with the telephone
    // number beside it) that the URI names that number. Those candidates are left out.
    let sip = string(SIP_URI, None);
    for candidate in [
        "sip:+14255550100@sbc1.carrier.example;user=phone",
        "sip:+14255550100@sbc1.carrier.example:5061;user=phone",
        "sip:+14255550100@192.0.2.10;user=phone",
        "sip:+14255550100@[2001:db8::1]:5060;user=phone",
        "sip:+14255550100@localhost;user=phone",
        "sip:+14255550100@sbc.example.;user=phone",
        "sips:+14255550100@sbc.example;user=phone",
        "sip:+14255550100@sbc.example",
        "sip:+14255550100;user=phone",
        "sip:4255550100@sbc.example;user=phone",
        "sip:+14255550100@;user=phone",
        "sip:+14255550100@-sbc.example;user=phone",
        "sip:+14255550100@sbc..example;user=phone",
        "sip:+14255550100@sbc_1.example;user=phone",
        "sip:+14255550100@[2001:db8::1;user=phone",
        "sip:+14255550100@sbc.example;user=phone;transport=tls",
    ] {
        assert_eq!(
            string_schema_accepts(&sip, candidate),
            parse_sip_uri(candidate).is_ok(),
            "SIP URI pattern on {candidate:?}"
        );
    }
    let call_id = &component_schemas()["CallRecord"]["properties"]["callId"];
    for candidate in [
        String::new(),
        "a".to_owned(),
        "é".repeat(128),
        "😀".repeat(128),
        "a".repeat(129),
    ] {
        assert_eq!(
            string_schema_accepts(call_id, &candidate),
            is_call_id(&candidate),
            "callId length on {} characters",
            candidate.chars().count()
        );
    }
}

// ------------------------------------------------------------------------------------------
// (d) strict mode for generated values

/// Keeps only the members each schema requires, recursively: the smallest body a sender may
/// send.
fn required_only(value: &Value, schema: &Value) -> Value {
    let schema = match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => resolve(reference),
        None => schema,
    };
    match value {
        Value::Object(members) => {
            let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
                return value.clone();
            };
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            members
                .iter()
                .filter(|(key, _)| required.contains(key.as_str()))
                .map(|(key, member)| {
                    let member = match properties.get(key) {
                        Some(property) => required_only(member, property),
                        None => member.clone(),
                    };
                    (key.clone(), member)
                })
                .collect::<Map<_, _>>()
                .into()
        }
        Value::Array(items) => match schema.get("items") {
            Some(item) => items.iter().map(|i| required_only(i, item)).collect(),
            None => value.clone(),
        },
        _ => value.clone(),
    }
}

/// A generated value: valid under its schema made strict, and its optional members really
/// optional (without them it still reads into the Rust type, which writes none of them back).
fn check_generated<T: Serialize>(schema: &str, value: &T) -> Result<(), TestCaseError> {
    let json = serde_json::to_value(value)
        .map_err(|e| TestCaseError::fail(format!("{schema}: does not serialise: {e}")))?;
    let errors = schema_errors(schema, true, &json);
    if !errors.is_empty() {
        return Err(TestCaseError::fail(format!(
            "a generated {schema} is invalid under the strict schema {schema} of openapi.yaml \
             (a field renamed, added or made optional on one side only?):\n    {}\n  value: {json}",
            errors.join("\n    ")
        )));
    }
    let wire = wire_type(schema);
    let minimal = required_only(&json, &component_schemas()[schema]);
    let back = (wire.round_trip)(&minimal).map_err(|e| {
        TestCaseError::fail(format!(
            "{schema} with only the members its schema requires {e} (a member the schema \
             calls optional is required in Rust?)\n  value: {minimal}"
        ))
    })?;
    if back != minimal {
        let mut message = String::new();
        let _ = write!(
            message,
            "{schema} with only the members its schema requires comes back from Rust with \
             more (a member the schema calls optional that Rust always writes?):\n    {}",
            describe_differences(&minimal, &back)
        );
        return Err(TestCaseError::fail(message));
    }
    Ok(())
}

fn strict_config() -> ProptestConfig {
    ProptestConfig {
        // 64 per type; `PROPTEST_CASES` raises it for a deeper run.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(64),
        // Never write regression files into the source tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

macro_rules! strict_tests {
    ($($test:ident: $schema:literal => $strategy:expr;)+) => {
        /// The object schemas the generated values below exercise.
        const STRICTLY_TESTED: &[&str] = &[$($schema),+];

        proptest! {
            #![proptest_config(strict_config())]
            $(
                #[test]
                fn $test(value in $strategy) {
                    check_generated($schema, &value)?;
                }
            )+
        }
    };
}

strict_tests! {
    strict_number_assignment_notification: "NumberAssignmentNotification" =>
        testing::number_assignment_notification();
    strict_number_event: "NumberEvent" => testing::number_event();
    strict_assignee: "Assignee" => testing::number_event().prop_filter_map("assigned", |e| e.assignee);
    strict_carrier_number_view: "CarrierNumberView" => testing::carrier_number_view();
    strict_teams_number: "TeamsNumber" => testing::teams_number();
    strict_call_record: "CallRecord" => testing::call_record();
    strict_quality_record: "QualityRecord" => testing::quality_record();
    strict_duration_report_batch: "DurationReportBatch" => testing::duration_report_batch();
    strict_duration_report: "DurationReport" => testing::duration_report();
    strict_duration_report_response: "DurationReportResponse" =>
        testing::duration_report_response();
    strict_rejected_record: "RejectedRecord" => testing::duration_report_response()
        .prop_filter_map("some rejected", |r| r.rejected.into_iter().next());
    strict_call_leg_batch: "CallLegBatch" => testing::call_leg_batch();
    strict_call_leg: "CallLeg" => testing::call_leg();
    strict_call_legs_accepted: "CallLegsAccepted" => testing::call_legs_accepted();
    strict_reconciliation_summary: "ReconciliationSummary" => testing::reconciliation_summary();
    strict_recon_counts: "ReconCounts" => testing::reconciliation_summary().prop_map(|s| s.counts);
    strict_recon_flag_counts: "ReconFlagCounts" =>
        testing::reconciliation_summary().prop_map(|s| s.flags);
    strict_drift_stats: "DriftStats" => testing::reconciliation_summary().prop_map(|s| s.drift_ms);
    strict_minutes_totals: "MinutesTotals" =>
        testing::reconciliation_summary().prop_map(|s| s.minutes);
    strict_reconciliation_item: "ReconciliationItem" => testing::reconciliation_item();
    strict_problem: "Problem" => testing::problem();
    strict_field_error: "FieldError" => testing::field_error();
    strict_teams_number_page: "TeamsNumberPage" => testing::page(testing::teams_number());
    strict_call_record_page: "CallRecordPage" => testing::page(testing::call_record());
    strict_quality_record_page: "QualityRecordPage" => testing::page(testing::quality_record());
    strict_reconciliation_item_page: "ReconciliationItemPage" =>
        testing::page(testing::reconciliation_item());
    strict_pstn_call_log_row: "PstnCallLogRow" => testing::pstn_call_log_row();
    strict_pstn_call_log_page: "PstnCallLogPage" =>
        testing::graph_page(testing::pstn_call_log_row());
    strict_graph_error: "GraphError" => testing::graph_error();
    strict_graph_error_detail: "GraphErrorDetail" => testing::graph_error().prop_map(|e| e.error);
}

#[test]
fn every_object_schema_is_tested_strictly() {
    let tested: BTreeSet<_> = STRICTLY_TESTED.iter().copied().collect();
    let objects: BTreeSet<_> = wire_types().iter().map(|w| w.schema).collect();
    assert_eq!(
        tested.len(),
        STRICTLY_TESTED.len(),
        "a schema is tested twice"
    );
    assert_eq!(
        tested, objects,
        "object schemas with generated values against those in the table"
    );
}

#[test]
fn strict_mode_rejects_an_unknown_member_and_lax_mode_ignores_it() {
    let mut record = serde_json::to_value(DurationReport {
        call_id: "c".to_owned(),
        telephone_number: "+14255550100".to_owned(),
        connect_date_time: "2026-11-26T09:20:04.250Z".to_owned(),
        end_date_time: "2026-11-26T09:21:05.250Z".to_owned(),
        duration_ms: 61_000,
    })
    .expect("serialises");
    assert_eq!(
        schema_errors("DurationReport", true, &record),
        Vec::<String>::new(),
        "a DurationReport from Rust under the strict schema"
    );
    record["futureField"] = json!(1);
    assert_eq!(
        schema_errors("DurationReport", false, &record),
        Vec::<String>::new(),
        "readers must ignore an unknown member"
    );
    let strict = schema_errors("DurationReportBatch", true, &json!({ "records": [record] }));
    assert_eq!(strict.len(), 1, "{strict:?}");
    assert!(strict[0].contains("/records/0"), "{strict:?}");
}

/// The `if`/`then` rules of the schemas are not vacuous: each breaks what [`Validate`] breaks.
#[test]
fn schema_conditions_reject_what_validate_rejects() {
    let event = json!({
        "eventId": "0b6e8a52-3c1d-4f7e-9a2b-5d4c3b2a1f00",
        "sequence": 7,
        "type": "assigned",
        "tenantId": "c0ffee00-7b1a-4c2d-9e3f-5a6b7c8d9e0f",
        "telephoneNumber": "+14255550100",
        "sipUri": "sip:+14255550100@sbc1.carrier.example;user=phone",
        "usage": "CallingUserAssignment",
        "assignee": {"id": "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d", "type": "user"},
        "effectiveDateTime": "2026-11-26T09:15:01.000Z",
    });
    let record = json!({
        "id": "5e2b7c1a-9d3f-4a6e-8b1c-2d3e4f5a6b7c",
        "version": 1,
        "callId": "1f0c2b7e-5d6a-4e3b-9c8d-7a6b5c4d3e2f",
        "tenantId": "c0ffee00-7b1a-4c2d-9e3f-5a6b7c8d9e0f",
        "telephoneNumber": "+14255550100",
        "direction": "outbound",
        "callerNumber": "+14255550100",
        "calleeNumber": "+442071838750",
        "startDateTime": "2026-11-26T09:20:00.500Z",
        "connectDateTime": null,
        "endDateTime": "2026-11-26T09:20:20.500Z",
        "durationMs": 0,
        "finalSipCode": 487,
        "callDurationSource": "microsoft",
        "availableDateTime": "2026-11-26T09:26:12.000Z",
    });
    let stream = json!({
        "callId": "1f0c2b7e-5d6a-4e3b-9c8d-7a6b5c4d3e2f",
        "streamDirection": "callerToCallee",
        "audioCodec": "opus",
        "packetUtilization": 3050,
        "averageJitterMs": 30,
        "maxJitterMs": 118,
        "averagePacketLossRate": 0.1,
        "maxPacketLossRate": 0.2,
        "averageRoundTripTimeMs": 500,
        "maxRoundTripTimeMs": 610,
        "averageAudioDegradation": 1.2,
        "averageRatioOfConcealedSamples": 0.05,
        "poor": false,
        "availableDateTime": "2026-11-26T09:26:12.000Z",
    });
    let item = json!({
        "callId": "d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a",
        "class": "missing",
        "telephoneNumber": "+14255550100",
        "teamsDurationMs": 125000,
        "late": false,
        "duplicate": false,
        "corrected": false,
    });
    let summary = json!({
        "from": "2026-11-26T00:00:00.000Z",
        "to": "2026-11-27T00:00:00.000Z",
        "toleranceMs": 1000,
        "counts": {"matched": 0, "drift": 0, "missing": 0, "unexpected": 1},
        "flags": {"late": 0, "duplicate": 0, "corrected": 0},
        "matchRate": null,
        "driftMs": {"count": 0, "min": null, "p50": null, "p90": null, "p99": null, "max": null},
        "minutes": {"teams": 0.0, "carrier": 0.5, "difference": 0.5},
    });
    let page =
        json!({"value": [], "nextLink": "https://oc.teams.example/oc/v1/cdrs/delta?token=a"});
    type Mutation = fn(&mut Value);
    let cases: [(&str, &Value, &str, Mutation); 13] = [
        ("NumberEvent", &event, "unassigned with a SIP URI", |v| {
            v["type"] = json!("unassigned");
        }),
        ("NumberEvent", &event, "assigned without usage", |v| {
            v.as_object_mut().map(|o| o.remove("usage"));
        }),
        (
            "NumberEvent",
            &event,
            "a user's usage on a resource account",
            |v| {
                v["assignee"]["type"] = json!("resourceAccount");
            },
        ),
        ("CallRecord", &record, "unanswered with a duration", |v| {
            v["durationMs"] = json!(20_000);
        }),
        ("CallRecord", &record, "unanswered with 200", |v| {
            v["finalSipCode"] = json!(200);
        }),
        ("CallRecord", &record, "answered with 487", |v| {
            v["connectDateTime"] = json!("2026-11-26T09:20:04.500Z");
            v["durationMs"] = json!(16_000);
        }),
        (
            "QualityRecord",
            &stream,
            "poor over 500 packets, called good",
            |v| {
                v["averageJitterMs"] = json!(31);
            },
        ),
        (
            "QualityRecord",
            &stream,
            "called poor at the thresholds",
            |v| {
                v["poor"] = json!(true);
            },
        ),
        ("QualityRecord", &stream, "short stream called poor", |v| {
            v["packetUtilization"] = json!(500);
            v["averageJitterMs"] = json!(90);
            v["poor"] = json!(true);
        }),
        (
            "ReconciliationItem",
            &item,
            "missing with a carrier duration",
            |v| {
                v["carrierDurationMs"] = json!(125_000);
            },
        ),
        ("ReconciliationItem", &item, "missing and late", |v| {
            v["late"] = json!(true);
        }),
        (
            "ReconciliationSummary",
            &summary,
            "drift figures without calls",
            |v| {
                v["driftMs"]["p50"] = json!(0);
            },
        ),
        (
            "CallRecordPage",
            &page,
            "a deltaLink beside a nextLink",
            |v| {
                v["deltaLink"] = json!("https://oc.teams.example/oc/v1/cdrs/delta?token=b");
            },
        ),
    ];
    for (schema, base, what, mutate) in cases {
        assert_eq!(
            schema_errors(schema, false, base),
            Vec::<String>::new(),
            "{schema}: the base value of case {what:?}"
        );
        let wire = wire_type(schema);
        let validate = wire.validate.expect("a validated type");
        assert_eq!(
            validate(base),
            Ok(()),
            "{schema}: the base value of {what:?}"
        );
        let mut broken = base.clone();
        mutate(&mut broken);
        assert!(
            !schema_errors(schema, false, &broken).is_empty(),
            "{schema}: the schema accepts {what}: {broken}"
        );
        assert!(
            validate(&broken).is_err(),
            "{schema}: Validate accepts {what}: {broken}"
        );
    }
}
