//! Checks `deploy/knative/*.yaml` and `deploy/Dockerfile`.
//!
//! 1. Schema: every Knative document is validated against the `openAPIV3Schema` of its CRD in
//!    `../shared/data/knative-crds/{serving,eventing}` (matched on group, kind and version),
//!    translated to JSON Schema the way the API server reads it (see [`to_json_schema`]). The core
//!    kinds (Namespace, Secret, ConfigMap) have no CRD; they are checked against a small
//!    hand-written subset of the core v1 schema.
//! 2. Rules the schemas leave to Knative's admission webhooks or to Valet's runtime contract:
//!    reserved env vars and ports, one container and one port per Service, `timeoutSeconds`,
//!    probes, Trigger coverage of every consumed event type, references between objects,
//!    placeholder Secrets, environment variables Valet actually reads (the list in
//!    `crates/server/src/settings.rs`), and a non-root runtime stage in the Dockerfile.
//!
//! Every rule has a negative test below that feeds it a broken manifest and expects a complaint.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::{Map, Value, json};

/// Set by Knative Serving (PORT, K_*) or injected by the SinkBinding (K_SINK, K_CE_OVERRIDES):
/// a manifest that sets one is refused by the webhook or fights the binding.
const RESERVED_ENV: &[&str] = &["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "K_SINK", "K_CE_OVERRIDES"];
/// Ports the queue-proxy and Knative's sidecars listen on.
const RESERVED_PORTS: &[i64] = &[8012, 8013, 8022, 9090, 9091];
/// Knative Serving's limit (max-revision-timeout-seconds default).
const MAX_TIMEOUT_SECONDS: i64 = 600;
const ROLES: &[&str] = &["ingest", "plate-reader", "occupancy", "gate", "billing", "query"];
/// The runtime contract: each consumed event type and the role that consumes it.
const CONSUMED: &[(&str, &str)] = &[
    ("io.valet.gate.frame.received.v1", "plate-reader"),
    ("io.valet.lot.frame.received.v1", "occupancy"),
    ("io.valet.plate.read.v1", "gate"),
    ("io.valet.session.closed.v1", "billing"),
];
const DEAD_LETTER_ROLE: &str = "query";
const DEAD_LETTER_PATH: &str = "/v1/dead-letters";
const NAMESPACE: &str = "valet";
const PLACEHOLDER_MARK: &str = "REPLACE_ME";
const SERVING: &str = "serving.knative.dev/v1";

// ---------------------------------------------------------------------------------------------
// Loading

#[derive(Debug, Clone)]
struct Doc {
    origin: String,
    value: Value,
}

impl Doc {
    fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or("")
    }
    fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or("")
    }
    fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or("")
    }
    fn is(&self, api_version: &str, kind: &str) -> bool {
        self.api_version() == api_version && self.kind() == kind
    }
    fn label(&self) -> String {
        format!("{} {}/{} ({})", self.api_version(), self.kind(), self.name(), self.origin)
    }
}

fn deploy_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn crd_dir() -> PathBuf {
    match std::env::var_os("VALET_KNATIVE_CRDS") {
        Some(dir) => PathBuf::from(dir),
        None => deploy_dir().join("../../shared/data/knative-crds"),
    }
}

/// Parses a multi-document YAML string; empty documents are skipped.
fn parse_docs(text: &str, origin: &str) -> Result<Vec<Doc>, String> {
    let mut docs = Vec::new();
    for (i, de) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = Value::deserialize(de).map_err(|e| format!("{origin} document {i}: {e}"))?;
        if !value.is_null() {
            docs.push(Doc { origin: format!("{origin}#{i}"), value });
        }
    }
    Ok(docs)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files.extend(yaml_files(&path));
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            files.push(path);
        }
    }
    files
}

fn load_manifests() -> Vec<Doc> {
    let dir = deploy_dir().join("knative");
    let mut docs = Vec::new();
    for path in yaml_files(&dir) {
        let text = std::fs::read_to_string(&path).unwrap();
        let origin = path.strip_prefix(&dir).unwrap().display().to_string();
        docs.extend(parse_docs(&text, &origin).unwrap());
    }
    assert!(!docs.is_empty(), "no manifests under {}", dir.display());
    docs
}

// ---------------------------------------------------------------------------------------------
// Schemas

/// Translates a Kubernetes structural schema (OpenAPI v3 subset plus `x-kubernetes-*`
/// extensions) into a JSON Schema (draft 4) that accepts what the API server accepts:
///
/// - `x-kubernetes-int-or-string: true`: the value must be an integer or a string (the
///   structural schema leaves `type` out; a boolean or an object is refused).
/// - `nullable: true`: `null` is also allowed.
/// - `x-kubernetes-preserve-unknown-fields: true`: fields not in `properties` are kept. Without
///   it, an object's unknown fields are pruned by the API server (and refused by kubectl's
///   default strict field validation), so they are refused here: a typo'd field fails the test
///   instead of vanishing silently.
/// - `x-kubernetes-embedded-resource: true`: `apiVersion`, `kind` and `metadata` are allowed.
/// - `x-kubernetes-list-type: set` becomes `uniqueItems`; `map` (unique keys) is checked
///   by [`list_map_problems`]; `format: int32` becomes a range.
/// - Descriptions are dropped; `metadata` at the root is ObjectMeta, which the API server
///   validates itself (names and namespaces are checked by the rules below).
fn to_json_schema(schema: &Value) -> Value {
    let Some(obj) = schema.as_object() else {
        return schema.clone();
    };
    let flag = |key: &str| obj.get(key) == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "description" | "format" | "nullable" => {}
            k if k.starts_with("x-kubernetes-") => {}
            "properties" | "patternProperties" | "definitions" => {
                let props = value
                    .as_object()
                    .map(|m| m.iter().map(|(n, s)| (n.clone(), to_json_schema(s))).collect())
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" | "additionalProperties" | "not" if value.is_object() => {
                out.insert(key.clone(), to_json_schema(value));
            }
            "allOf" | "anyOf" | "oneOf" => {
                let list = value.as_array().map(|a| a.iter().map(to_json_schema).collect());
                out.insert(key.clone(), Value::Array(list.unwrap_or_default()));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if flag("x-kubernetes-int-or-string") {
        out.remove("type");
        let int_or_string = json!([{"type": "integer"}, {"type": "string"}]);
        match out.remove("anyOf") {
            Some(existing) => {
                out.insert("allOf".into(), json!([{"anyOf": existing}, {"anyOf": int_or_string}]));
            }
            None => {
                out.insert("anyOf".into(), int_or_string);
            }
        }
    }
    if obj.get("format").and_then(Value::as_str) == Some("int32") {
        out.insert("minimum".into(), json!(i32::MIN));
        out.insert("maximum".into(), json!(i32::MAX));
    }
    if obj.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("set") {
        out.insert("uniqueItems".into(), Value::Bool(true));
    }
    if flag("x-kubernetes-embedded-resource") {
        let props = out.entry("properties").or_insert_with(|| json!({}));
        if let Some(props) = props.as_object_mut() {
            props.entry("apiVersion").or_insert_with(|| json!({"type": "string"}));
            props.entry("kind").or_insert_with(|| json!({"type": "string"}));
            props.entry("metadata").or_insert_with(|| json!({"type": "object"}));
        }
    }
    let is_object = out.get("type").and_then(Value::as_str) == Some("object");
    if is_object && !flag("x-kubernetes-preserve-unknown-fields") {
        out.entry("additionalProperties").or_insert(Value::Bool(false));
    }
    if flag("nullable")
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".into(), json!([t, "null"]));
    }
    out.remove("default");
    Value::Object(out)
}

/// The root of a CRD schema: `apiVersion`, `kind` and `metadata` are always allowed there, and
/// `metadata` is the API server's business.
fn root_schema(open_api: &Value) -> Value {
    let mut schema = to_json_schema(open_api);
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
        props.insert("metadata".into(), json!({"type": "object"}));
    }
    schema
}

/// `x-kubernetes-list-type: map`: items are unique by their `x-kubernetes-list-map-keys`
/// (two env entries or two ports with the same key are refused by the API server).
fn list_map_problems(schema: &Value, value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties").filter(|s| s.is_object());
            for (k, v) in map {
                if let Some(s) = props.and_then(|p| p.get(k)).or(extra) {
                    list_map_problems(s, v, &format!("{path}/{k}"), out);
                }
            }
        }
        Value::Array(items) => {
            let is_map = schema.get("x-kubernetes-list-type").and_then(Value::as_str) == Some("map");
            if is_map && let Some(keys) = schema["x-kubernetes-list-map-keys"].as_array() {
                let mut seen = BTreeSet::new();
                for item in items {
                    let key: Vec<String> = keys.iter().map(|k| item[k.as_str().unwrap_or("")].to_string()).collect();
                    if !seen.insert(key.clone()) {
                        out.push(format!("{path}: duplicate list-map key {key:?}"));
                    }
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    list_map_problems(item_schema, item, &format!("{path}/{i}"), out);
                }
            }
        }
        _ => {}
    }
}

struct Schemas {
    /// (group, kind, version) → (JSON Schema, original structural schema)
    by_gkv: BTreeMap<(String, String, String), (jsonschema::Validator, Value)>,
}

fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((group, version)) => (group.to_owned(), version.to_owned()),
        None => (String::new(), api_version.to_owned()),
    }
}

fn compile(schema: &Value) -> jsonschema::Validator {
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema does not compile: {e}"))
}

/// The core v1 kinds the manifests use, as a hand-written subset of Kubernetes' own schema.
fn core_schemas() -> Vec<(&'static str, Value)> {
    let meta = json!({"type": "object"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let root = |extra: Value| {
        let mut props = json!({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": meta});
        props.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        json!({"type": "object", "required": ["apiVersion", "kind", "metadata"], "properties": props, "additionalProperties": false})
    };
    vec![
        ("Namespace", root(json!({"spec": {"type": "object"}}))),
        (
            "Secret",
            root(json!({"type": {"type": "string"}, "data": string_map, "stringData": string_map,
                         "immutable": {"type": "boolean"}})),
        ),
        ("ConfigMap", root(json!({"data": string_map, "binaryData": string_map, "immutable": {"type": "boolean"}}))),
    ]
}

fn load_schemas(dir: &Path) -> Schemas {
    let mut by_gkv = BTreeMap::new();
    for sub in ["serving", "eventing"] {
        for path in yaml_files(&dir.join(sub)) {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in parse_docs(&text, &path.display().to_string()).unwrap() {
                if doc.kind() != "CustomResourceDefinition" {
                    continue;
                }
                let spec = &doc.value["spec"];
                let group = spec["group"].as_str().unwrap_or("").to_owned();
                let kind = spec["names"]["kind"].as_str().unwrap_or("").to_owned();
                for version in spec["versions"].as_array().into_iter().flatten() {
                    let open_api = &version["schema"]["openAPIV3Schema"];
                    if open_api.is_null() {
                        continue;
                    }
                    let name = version["name"].as_str().unwrap_or("").to_owned();
                    let validator = compile(&root_schema(open_api));
                    by_gkv.insert((group.clone(), kind.clone(), name), (validator, open_api.clone()));
                }
            }
        }
    }
    for (kind, schema) in core_schemas() {
        by_gkv.insert((String::new(), kind.to_owned(), "v1".to_owned()), (compile(&schema), schema));
    }
    Schemas { by_gkv }
}

impl Schemas {
    fn problems(&self, doc: &Doc) -> Vec<String> {
        let (group, version) = split_api_version(doc.api_version());
        let key = (group, doc.kind().to_owned(), version);
        let Some((validator, structural)) = self.by_gkv.get(&key) else {
            return vec![format!("{}: no CRD schema for {key:?}", doc.label())];
        };
        let mut out: Vec<String> = validator
            .iter_errors(&doc.value)
            .map(|e| format!("{}: schema: {} at {}", doc.label(), e, e.instance_path()))
            .collect();
        let mut lists = Vec::new();
        list_map_problems(structural, &doc.value, "", &mut lists);
        out.extend(lists.into_iter().map(|p| format!("{}: schema: {p}", doc.label())));
        out
    }
}

/// `None` (and a printed `skipped:` line) when the CRD directory is absent.
fn schemas() -> Option<Schemas> {
    let dir = crd_dir();
    if !dir.is_dir() {
        println!("skipped: {} is absent", dir.display());
        return None;
    }
    Some(load_schemas(&dir))
}

// ---------------------------------------------------------------------------------------------
// Rules

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn find<'a>(docs: &'a [Doc], api_version: &str, kind: &str, name: &str) -> Option<&'a Doc> {
    docs.iter().find(|d| d.is(api_version, kind) && d.name() == name)
}

fn string_keys(doc: &Doc) -> BTreeSet<String> {
    ["data", "stringData"].iter().filter_map(|f| doc.value[*f].as_object()).flat_map(|m| m.keys().cloned()).collect()
}

/// The role names a Service runs, from its `VALET_FUNCTIONS` env value.
fn service_roles(doc: &Doc) -> Vec<String> {
    let containers = doc.value.pointer("/spec/template/spec/containers").and_then(Value::as_array);
    containers
        .into_iter()
        .flatten()
        .flat_map(|c| c["env"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["name"] == "VALET_FUNCTIONS")
        .flat_map(|e| {
            let v = e["value"].as_str().unwrap_or("").to_owned();
            v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>()
        })
        .collect()
}

fn service_for_role<'a>(docs: &'a [Doc], role: &str) -> Option<&'a Doc> {
    docs.iter().filter(|d| d.is(SERVING, "Service")).find(|d| service_roles(d).iter().any(|r| r == role))
}

fn check_service(doc: &Doc, docs: &[Doc], out: &mut Vec<String>) {
    let at = doc.label();
    let spec = &doc.value["spec"]["template"]["spec"];
    let containers = spec["containers"].as_array().cloned().unwrap_or_default();
    if containers.len() != 1 {
        out.push(format!("{at}: {} containers, want exactly one", containers.len()));
    }
    match spec["timeoutSeconds"].as_i64() {
        Some(t) if (1..=MAX_TIMEOUT_SECONDS).contains(&t) => {}
        Some(t) => out.push(format!("{at}: timeoutSeconds {t} is outside 1..={MAX_TIMEOUT_SECONDS}")),
        None => out.push(format!("{at}: timeoutSeconds is not set")),
    }
    let annotations = &doc.value["spec"]["template"]["metadata"]["annotations"];
    let scale =
        |k: &str| annotations[format!("autoscaling.knative.dev/{k}")].as_str().and_then(|v| v.parse::<u64>().ok());
    if let (Some(min), Some(max)) = (scale("min-scale"), scale("max-scale"))
        && max != 0
        && min > max
    {
        out.push(format!("{at}: min-scale {min} > max-scale {max}"));
    }
    let port = spec["containers"][0]["ports"][0]["containerPort"].as_i64().map(|p| p.to_string());
    let scrape = |k: &str| annotations[format!("prometheus.io/{k}")].as_str().map(str::to_owned);
    if scrape("scrape").as_deref() != Some("true")
        || scrape("path").as_deref() != Some("/metrics")
        || scrape("port") != port
    {
        out.push(format!(
            "{at}: Prometheus would not scrape it: want prometheus.io/scrape \"true\", path /metrics and the \
             container's port, got {:?} {:?} {:?}",
            scrape("scrape"),
            scrape("path"),
            scrape("port")
        ));
    }
    let roles = service_roles(doc);
    if roles.is_empty() {
        out.push(format!("{at}: no VALET_FUNCTIONS env var: the Service would run every role"));
    }
    for role in &roles {
        if !ROLES.contains(&role.as_str()) {
            out.push(format!("{at}: VALET_FUNCTIONS names unknown role {role:?}"));
        }
    }
    for c in &containers {
        let ports = c["ports"].as_array().cloned().unwrap_or_default();
        if ports.len() != 1 {
            out.push(format!("{at}: {} container ports, want exactly one", ports.len()));
        }
        let port = ports.first().and_then(|p| p["containerPort"].as_i64());
        for p in &ports {
            let number = p["containerPort"].as_i64().unwrap_or(0);
            if RESERVED_PORTS.contains(&number) {
                out.push(format!("{at}: containerPort {number} is reserved by Knative"));
            }
            let name = p["name"].as_str().unwrap_or("");
            if !["http1", "h2c"].contains(&name) {
                out.push(format!("{at}: port name {name:?}, want http1 or h2c"));
            }
        }
        for e in c["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or("");
            if RESERVED_ENV.contains(&name) {
                out.push(format!("{at}: reserved env var {name} is set"));
            } else if !known_env().contains(name) {
                out.push(format!("{at}: env var {name} is not one Valet reads (see settings.rs)"));
            }
            if let Some(r) = e.pointer("/valueFrom/secretKeyRef").or(e.pointer("/valueFrom/configMapKeyRef")) {
                let kind = if e.pointer("/valueFrom/secretKeyRef").is_some() { "Secret" } else { "ConfigMap" };
                check_key_ref(&at, kind, r, docs, out);
            }
        }
        for source in c["envFrom"].as_array().into_iter().flatten() {
            for (field, kind) in [("configMapRef", "ConfigMap"), ("secretRef", "Secret")] {
                let Some(r) = source.get(field) else { continue };
                let target = r["name"].as_str().unwrap_or("");
                match find(docs, "v1", kind, target) {
                    Some(d) => {
                        let prefix = source["prefix"].as_str().unwrap_or("");
                        for key in string_keys(d) {
                            let name = format!("{prefix}{key}");
                            if RESERVED_ENV.contains(&name.as_str()) {
                                out.push(format!("{at}: reserved env var {name} is set via {kind} {target}"));
                            } else if !known_env().contains(name.as_str()) {
                                out.push(format!(
                                    "{at}: env var {name} (via {kind} {target}) is not one Valet reads (see settings.rs)"
                                ));
                            }
                        }
                    }
                    None if r["optional"] == true => {}
                    None => out.push(format!("{at}: envFrom names missing {kind} {target:?}")),
                }
            }
        }
        for (probe, path) in [("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")] {
            let get = &c[probe]["httpGet"];
            if get["path"].as_str() != Some(path) {
                out.push(format!("{at}: {probe} must be httpGet {path}"));
            }
            if let Some(p) = get.get("port")
                && p.as_i64() != port
                && p.as_str() != ports.first().and_then(|x| x["name"].as_str())
            {
                out.push(format!("{at}: {probe} port {p} is not the container port"));
            }
        }
        for part in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                if c["resources"][part][res].is_null() {
                    out.push(format!("{at}: resources.{part}.{res} is not set"));
                }
            }
        }
        if c["securityContext"]["runAsUser"] == 0 {
            out.push(format!("{at}: runs as root (runAsUser 0)"));
        }
    }
}

/// The environment variables Valet reads: the names in `ENVIRONMENT` of
/// `crates/server/src/settings.rs`, read from its source so this crate stays free of the server's
/// build. A variable the binary does not read (`RUST_LOG` for `VALET_LOG`) silently does nothing.
fn known_env() -> &'static BTreeSet<String> {
    static KNOWN: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    KNOWN.get_or_init(|| {
        let path = deploy_dir().join("../crates/server/src/settings.rs");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        environment_names(&text)
    })
}

/// Each name in the `ENVIRONMENT` table of `settings.rs`'s text.
fn environment_names(settings_rs: &str) -> BTreeSet<String> {
    let start = settings_rs.find("pub const ENVIRONMENT").expect("settings.rs defines ENVIRONMENT");
    let table = &settings_rs[start..];
    let table = &table[..table.find("];").expect("ENVIRONMENT ends with `];`")];
    // An entry is `("NAME", "what")`, the name on the next line when rustfmt breaks it.
    table
        .split('(')
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split_once('"').map(|(name, _)| name))
        .filter(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

fn check_key_ref(at: &str, kind: &str, r: &Value, docs: &[Doc], out: &mut Vec<String>) {
    let (name, key) = (r["name"].as_str().unwrap_or(""), r["key"].as_str().unwrap_or(""));
    if r["optional"] == true {
        return;
    }
    match find(docs, "v1", kind, name) {
        Some(d) if string_keys(d).contains(key) => {}
        Some(_) => out.push(format!("{at}: {kind} {name:?} has no key {key:?}")),
        None => out.push(format!("{at}: refers to missing {kind} {name:?}")),
    }
}

/// A Destination (`ref` + optional `uri`) must resolve to an object in the manifests.
fn check_destination(at: &str, what: &str, dest: &Value, docs: &[Doc], out: &mut Vec<String>) -> Option<String> {
    let r = &dest["ref"];
    let (api, kind, name) =
        (r["apiVersion"].as_str().unwrap_or(""), r["kind"].as_str().unwrap_or(""), r["name"].as_str().unwrap_or(""));
    if r.is_null() {
        out.push(format!("{at}: {what} has no ref"));
        return None;
    }
    if find(docs, api, kind, name).is_none() {
        out.push(format!("{at}: {what} refers to missing {api} {kind}/{name}"));
        return None;
    }
    Some(name.to_owned())
}

fn is_iso8601_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else { return false };
    !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_digit() || "YMWDTHS.".contains(c))
        && rest.chars().any(|c| c.is_ascii_digit())
}

/// Delivery: retries with exponential backoff, dead letters to the query role's endpoint.
fn check_delivery(at: &str, delivery: &Value, docs: &[Doc], out: &mut Vec<String>) {
    if delivery.is_null() {
        out.push(format!("{at}: no delivery spec (retries, backoff, dead-letter sink)"));
        return;
    }
    if delivery["retry"].as_i64().unwrap_or(0) < 1 {
        out.push(format!("{at}: delivery.retry must be at least 1"));
    }
    if delivery["backoffPolicy"].as_str() != Some("exponential") {
        out.push(format!("{at}: delivery.backoffPolicy must be exponential"));
    }
    match delivery["backoffDelay"].as_str() {
        Some(d) if is_iso8601_duration(d) => {}
        other => out.push(format!("{at}: delivery.backoffDelay {other:?} is not an ISO-8601 duration")),
    }
    let dls = &delivery["deadLetterSink"];
    if let Some(name) = check_destination(at, "deadLetterSink", dls, docs, out) {
        let target = find(docs, SERVING, "Service", &name);
        let is_query = target.is_some_and(|d| service_roles(d).iter().any(|r| r == DEAD_LETTER_ROLE));
        if !is_query || dls["uri"].as_str() != Some(DEAD_LETTER_PATH) {
            out.push(format!("{at}: deadLetterSink must be the {DEAD_LETTER_ROLE} Service at {DEAD_LETTER_PATH}"));
        }
    }
}

fn check_rules(docs: &[Doc]) -> Vec<String> {
    let mut out = Vec::new();
    if find(docs, "v1", "Namespace", NAMESPACE).is_none() {
        out.push(format!("no Namespace {NAMESPACE}"));
    }
    let mut seen = BTreeSet::new();
    for doc in docs {
        let at = doc.label();
        if !is_dns_label(doc.name()) {
            out.push(format!("{at}: metadata.name is not a DNS label"));
        }
        if doc.kind() != "Namespace" && doc.value["metadata"]["namespace"] != NAMESPACE {
            out.push(format!("{at}: metadata.namespace must be {NAMESPACE}"));
        }
        if !seen.insert((doc.api_version().to_owned(), doc.kind().to_owned(), doc.name().to_owned())) {
            out.push(format!("{at}: defined twice"));
        }
    }
    for doc in docs {
        let at = doc.label();
        match (doc.api_version(), doc.kind()) {
            (SERVING, "Service") => check_service(doc, docs, &mut out),
            ("v1", "Secret") => {
                if doc.value.get("data").is_some() {
                    out.push(format!("{at}: use stringData with visible placeholders, not data"));
                }
                for (k, v) in doc.value["stringData"].as_object().into_iter().flatten() {
                    if !v.as_str().unwrap_or("").contains(PLACEHOLDER_MARK) {
                        out.push(format!("{at}: value of {k} is not a {PLACEHOLDER_MARK} placeholder"));
                    }
                }
            }
            ("eventing.knative.dev/v1", "Broker") => {
                check_delivery(&at, &doc.value["spec"]["delivery"], docs, &mut out)
            }
            ("eventing.knative.dev/v1", "Trigger") => {
                let spec = &doc.value["spec"];
                let broker = spec["broker"].as_str().unwrap_or("");
                if find(docs, "eventing.knative.dev/v1", "Broker", broker).is_none() {
                    out.push(format!("{at}: broker {broker:?} is not defined"));
                }
                let attrs = spec["filter"]["attributes"].as_object();
                if attrs.is_none_or(|a| a.len() != 1 || !a.contains_key("type")) {
                    out.push(format!("{at}: filter must be on type alone"));
                }
                if attrs.into_iter().flatten().any(|(_, v)| !v.is_string()) {
                    out.push(format!("{at}: filter attribute values must be strings"));
                }
                let subscriber = check_destination(&at, "subscriber", &spec["subscriber"], docs, &mut out);
                if spec["subscriber"]["ref"]["kind"] != "Service" || spec["subscriber"]["ref"]["apiVersion"] != SERVING
                {
                    out.push(format!("{at}: subscriber must be a Knative Service"));
                }
                let event_type = spec["filter"]["attributes"]["type"].as_str().unwrap_or("");
                match CONSUMED.iter().find(|(t, _)| *t == event_type) {
                    None => out.push(format!("{at}: nobody consumes event type {event_type:?}")),
                    Some((_, role)) => {
                        let expected = service_for_role(docs, role).map(Doc::name);
                        if subscriber.is_some() && subscriber.as_deref() != expected {
                            out.push(format!("{at}: {event_type} must go to the {role} Service"));
                        }
                    }
                }
                if !spec["delivery"].is_null() {
                    check_delivery(&at, &spec["delivery"], docs, &mut out);
                }
            }
            ("sources.knative.dev/v1", "SinkBinding") => {
                let subject = &doc.value["spec"]["subject"];
                let ingest = service_for_role(docs, "ingest").map(Doc::name);
                if subject["apiVersion"] != SERVING
                    || subject["kind"] != "Service"
                    || subject["name"].as_str() != ingest
                {
                    out.push(format!("{at}: subject must be the ingest Service"));
                }
                let sink = &doc.value["spec"]["sink"];
                if check_destination(&at, "sink", sink, docs, &mut out).is_some() && sink["ref"]["kind"] != "Broker" {
                    out.push(format!("{at}: sink must be the Broker"));
                }
            }
            _ => {}
        }
    }
    for role in ROLES {
        let n = docs.iter().filter(|d| d.is(SERVING, "Service") && service_roles(d).iter().any(|r| r == role)).count();
        if n != 1 {
            out.push(format!("role {role} is served by {n} Services, want exactly one"));
        }
    }
    let bindings = docs.iter().filter(|d| d.is("sources.knative.dev/v1", "SinkBinding")).count();
    if bindings != 1 {
        out.push(format!("{bindings} SinkBindings, want one (ingest → Broker)"));
    }
    if !docs.iter().any(|d| d.is("eventing.knative.dev/v1", "Broker")) {
        out.push("no Broker".to_owned());
    }
    for (event_type, _) in CONSUMED {
        let n = docs
            .iter()
            .filter(|d| d.is("eventing.knative.dev/v1", "Trigger"))
            .filter(|d| d.value["spec"]["filter"]["attributes"]["type"] == *event_type)
            .count();
        if n != 1 {
            out.push(format!("consumed event type {event_type} has {n} Triggers, want exactly one"));
        }
    }
    if let Some(secret) = find(docs, "v1", "Secret", "valet-db") {
        for key in ["database-url", "plate-key"] {
            if !string_keys(secret).contains(key) {
                out.push(format!("Secret valet-db has no key {key}"));
            }
        }
    } else {
        out.push("no Secret valet-db".to_owned());
    }
    out
}

/// Dockerfile: multi-stage, `--locked` build, runtime stage copies only the binary from the
/// builder and runs as a non-root USER, with the agreed ENTRYPOINT.
fn check_dockerfile(text: &str) -> Vec<String> {
    let joined = text.replace("\\\n", " ");
    let instructions: Vec<(String, String)> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (op.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect();
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    for ins in instructions {
        if ins.0 == "FROM" {
            stages.push(Vec::new());
        }
        match stages.last_mut() {
            Some(stage) => stage.push(ins),
            None if ins.0 == "ARG" => {}
            None => return vec![format!("{} before the first FROM", ins.0)],
        }
    }
    let mut out = Vec::new();
    if stages.len() < 2 {
        return vec![format!("{} stage(s), want a builder and a runtime stage", stages.len())];
    }
    let builds = stages[..stages.len() - 1].iter().flatten().any(|(op, rest)| {
        op == "RUN"
            && rest.contains("cargo build")
            && rest.contains("--release")
            && rest.contains("-p valet")
            && rest.contains("--locked")
    });
    if !builds {
        out.push("no builder stage runs `cargo build --release -p valet --locked`".to_owned());
    }
    let runtime = stages.last().unwrap();
    let users: Vec<&String> = runtime.iter().filter(|(op, _)| op == "USER").map(|(_, r)| r).collect();
    match users.last() {
        None => out.push("runtime stage sets no USER".to_owned()),
        Some(user) => {
            let name = user.split(':').next().unwrap_or("");
            if name == "root" || name.parse::<u32>() == Ok(0) {
                out.push(format!("runtime stage runs as root (USER {user})"));
            }
        }
    }
    for (op, rest) in runtime {
        if op == "ADD" || (op == "COPY" && !rest.starts_with("--from=")) {
            out.push(format!("runtime stage copies from the build context: {op} {rest}"));
        }
        if op == "COPY" && rest.starts_with("--from=") && !rest.ends_with("/usr/local/bin/valet") {
            out.push(format!("runtime stage copies more than the binary: {op} {rest}"));
        }
    }
    let entrypoint = runtime.iter().rev().find(|(op, _)| op == "ENTRYPOINT").map(|(_, r)| r);
    let parsed: Option<Vec<String>> = entrypoint.and_then(|e| serde_json::from_str(e).ok());
    if parsed.as_deref() != Some(&["/usr/local/bin/valet".to_owned(), "serve".to_owned()][..]) {
        out.push(format!("runtime ENTRYPOINT is {entrypoint:?}, want [\"/usr/local/bin/valet\", \"serve\"]"));
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Tests on the real files

#[test]
fn manifests_match_the_knative_crd_schemas() {
    let Some(schemas) = schemas() else { return };
    let docs = load_manifests();
    let problems: Vec<String> = docs.iter().flat_map(|d| schemas.problems(d)).collect();
    assert!(problems.is_empty(), "schema problems:\n{}", problems.join("\n"));
    let kinds: BTreeSet<&str> = docs.iter().map(Doc::kind).collect();
    println!("{} documents valid ({kinds:?})", docs.len());
}

#[test]
fn manifests_keep_the_rules_the_schemas_leave_out() {
    let problems = check_rules(&load_manifests());
    assert!(problems.is_empty(), "rule problems:\n{}", problems.join("\n"));
}

#[test]
fn dockerfile_builds_locked_and_runs_non_root() {
    let text = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let problems = check_dockerfile(&text);
    assert!(problems.is_empty(), "Dockerfile problems:\n{}", problems.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Negative tests: each rule and the schema check reject a broken manifest.

/// A valid query-role Service; the placeholders are swapped in by the negative tests.
const QUERY_SERVICE: &str = r#"
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: query
  namespace: valet
spec:
  template:
    metadata:
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: "8080"
        prometheus.io/path: /metrics
    spec:
      timeoutSeconds: TIMEOUT
      containers:
        - image: registry.example.invalid/valet:0.1.0
          ports:
PORTS
          env:
            - name: VALET_FUNCTIONS
              value: query
EXTRA_ENV
          readinessProbe:
            httpGet:
              path: /readyz
          livenessProbe:
            httpGet:
              path: /healthz
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 256Mi}
"#;
const ONE_PORT: &str = "            - name: http1\n              containerPort: 8080";

fn query_service(timeout: &str, ports: &str, extra_env: &str) -> String {
    QUERY_SERVICE.replace("TIMEOUT", timeout).replace("PORTS", ports).replace("EXTRA_ENV\n", extra_env)
}

/// The real manifests with the query Service replaced by `yaml`.
fn with_query_service(yaml: &str) -> Vec<Doc> {
    let mut docs: Vec<Doc> =
        load_manifests().into_iter().filter(|d| !(d.is(SERVING, "Service") && d.name() == "query")).collect();
    docs.extend(parse_docs(yaml, "test").unwrap());
    docs
}

fn rule_problems_with_query(yaml: &str) -> Vec<String> {
    check_rules(&with_query_service(yaml))
}

fn assert_has(problems: &[String], needle: &str) {
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing {needle:?}, got:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_negative_test_template_is_itself_valid() {
    let ok = query_service("30", ONE_PORT, "");
    assert_eq!(rule_problems_with_query(&ok), Vec::<String>::new());
    if let Some(schemas) = schemas() {
        let doc = &parse_docs(&ok, "test").unwrap()[0];
        assert_eq!(schemas.problems(doc), Vec::<String>::new());
    }
}

#[test]
fn rejects_a_service_prometheus_would_not_scrape() {
    for (from, to) in [
        ("        prometheus.io/scrape: \"true\"\n", ""),
        ("prometheus.io/path: /metrics", "prometheus.io/path: /stats"),
        ("prometheus.io/port: \"8080\"", "prometheus.io/port: \"9090\""),
    ] {
        let yaml = query_service("30", ONE_PORT, "");
        assert!(yaml.contains(from), "{from}");
        assert_has(&rule_problems_with_query(&yaml.replace(from, to)), "Prometheus would not scrape it");
    }
}

#[test]
fn rejects_reserved_env_vars() {
    for name in ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "K_SINK"] {
        let env = format!("            - name: {name}\n              value: \"x\"\n");
        assert_has(
            &rule_problems_with_query(&query_service("30", ONE_PORT, &env)),
            &format!("reserved env var {name}"),
        );
    }
    // Also through envFrom: a ConfigMap key named PORT.
    let mut docs = load_manifests();
    for d in &mut docs {
        if d.is("v1", "ConfigMap") {
            d.value["data"]["PORT"] = json!("9000");
        }
    }
    assert_has(&check_rules(&docs), "reserved env var PORT is set via ConfigMap");
}

#[test]
fn the_environment_table_of_settings_rs_is_read_whole() {
    let known = known_env();
    for name in ["VALET_LOG", "VALET_DATABASE_URL", "VALET_FUNCTIONS", "VALET_PLATE_KEY", "K_SINK"] {
        assert!(known.contains(name), "{name} missing from {known:?}");
    }
    assert!(!known.contains("RUST_LOG"), "Valet reads VALET_LOG, not RUST_LOG");
}

#[test]
fn rejects_env_vars_valet_does_not_read() {
    let env = "            - name: VALET_LOGGING\n              value: \"debug\"\n";
    assert_has(
        &rule_problems_with_query(&query_service("30", ONE_PORT, env)),
        "env var VALET_LOGGING is not one Valet reads",
    );
    // Also through envFrom: the ConfigMap once set RUST_LOG, which the binary never read.
    let mut docs = load_manifests();
    for d in &mut docs {
        if d.is("v1", "ConfigMap") {
            d.value["data"]["RUST_LOG"] = json!("debug");
        }
    }
    assert_has(&check_rules(&docs), "env var RUST_LOG (via ConfigMap valet-config) is not one Valet reads");
}

#[test]
fn rejects_two_ports_and_reserved_ports() {
    let two = format!("{ONE_PORT}\n            - name: h2c\n              containerPort: 8081");
    assert_has(&rule_problems_with_query(&query_service("30", &two, "")), "2 container ports, want exactly one");
    let reserved = ONE_PORT.replace("8080", "8012");
    assert_has(&rule_problems_with_query(&query_service("30", &reserved, "")), "containerPort 8012 is reserved");
    let named = ONE_PORT.replace("http1", "web");
    assert_has(&rule_problems_with_query(&query_service("30", &named, "")), "want http1 or h2c");
}

#[test]
fn rejects_long_timeouts() {
    assert_has(&rule_problems_with_query(&query_service("900", ONE_PORT, "")), "timeoutSeconds 900 is outside");
}

#[test]
fn rejects_missing_probes_resources_and_two_containers() {
    let no_probe = query_service("30", ONE_PORT, "").replace("path: /readyz", "path: /");
    assert_has(&rule_problems_with_query(&no_probe), "readinessProbe must be httpGet /readyz");
    let no_limits =
        query_service("30", ONE_PORT, "").replace("limits: {cpu: \"1\", memory: 256Mi}", "limits: {cpu: \"1\"}");
    assert_has(&rule_problems_with_query(&no_limits), "resources.limits.memory is not set");
    let two = query_service("30", ONE_PORT, "")
        .replace("      containers:\n", "      containers:\n        - image: sidecar\n");
    assert_has(&rule_problems_with_query(&two), "2 containers, want exactly one");
}

#[test]
fn rejects_trigger_mistakes() {
    let base = load_manifests();
    let trigger = base.iter().find(|d| d.is("eventing.knative.dev/v1", "Trigger")).unwrap().clone();
    let event_type = trigger.value["spec"]["filter"]["attributes"]["type"].as_str().unwrap().to_owned();

    // A second Trigger for the same type.
    let mut dup = trigger.clone();
    dup.value["metadata"]["name"] = json!("duplicate");
    let mut docs = base.clone();
    docs.push(dup);
    assert_has(&check_rules(&docs), &format!("{event_type} has 2 Triggers"));

    // A consumed type with no Trigger, and a subscriber that names no Service.
    let mut docs = base.clone();
    let t = docs.iter_mut().find(|d| d.name() == trigger.name()).unwrap();
    t.value["spec"]["subscriber"]["ref"]["name"] = json!("no-such-service");
    assert_has(&check_rules(&docs), "subscriber refers to missing serving.knative.dev/v1 Service/no-such-service");
    let t = docs.iter_mut().find(|d| d.name() == trigger.name()).unwrap();
    t.value["spec"]["filter"]["attributes"] = json!({"type": 5});
    assert_has(&check_rules(&docs), "filter attribute values must be strings");
    let t = docs.iter_mut().find(|d| d.name() == trigger.name()).unwrap();
    t.value["spec"]["filter"]["attributes"] = json!({"source": "camera-1"});
    let problems = check_rules(&docs);
    assert_has(&problems, "filter must be on type alone");
    assert_has(&problems, &format!("{event_type} has 0 Triggers"));

    // The dead-letter sink must be the query role's endpoint.
    let mut docs = base.clone();
    let b = docs.iter_mut().find(|d| d.kind() == "Broker").unwrap();
    b.value["spec"]["delivery"]["deadLetterSink"]["uri"] = json!("/");
    b.value["spec"]["delivery"]["backoffPolicy"] = json!("linear");
    let problems = check_rules(&docs);
    assert_has(&problems, "deadLetterSink must be the query Service");
    assert_has(&problems, "backoffPolicy must be exponential");
}

#[test]
fn rejects_real_looking_secrets_and_missing_refs() {
    let mut docs = load_manifests();
    let s = docs.iter_mut().find(|d| d.is("v1", "Secret") && d.name() == "valet-db").unwrap();
    s.value["stringData"]["plate-key"] = json!("00".repeat(32));
    assert_has(&check_rules(&docs), "value of plate-key is not a REPLACE_ME placeholder");
    let env = "            - name: VALET_DATABASE_URL\n              valueFrom:\n                secretKeyRef: {name: valet-db, key: nope}\n";
    assert_has(
        &rule_problems_with_query(&query_service("30", ONE_PORT, env)),
        "Secret \"valet-db\" has no key \"nope\"",
    );
}

#[test]
fn rejects_documents_that_break_the_crd_schema() {
    let Some(schemas) = schemas() else { return };
    let cases = [
        // A typo'd field: pruned by the API server, refused here.
        (query_service("30", ONE_PORT, "").replace("readinessProbe", "readinesProbe"), "readinesProbe"),
        // timeoutSeconds must be an integer.
        (query_service("\"thirty\"", ONE_PORT, ""), "thirty"),
        // int-or-string: a probe port may be 8080 or "http1", never a boolean.
        (query_service("30", ONE_PORT, "").replace("path: /healthz", "path: /healthz\n              port: true"), "true"),
        // containers must be a list.
        (
            "apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: q, namespace: valet}\nspec:\n  template:\n    spec:\n      containers: one\n".to_owned(),
            "\"one\"",
        ),
        // A Trigger's broker is a name, not a list. (Its filter attributes are
        // preserve-unknown-fields in the CRD: the string-only rule is in check_rules.)
        (
            "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t, namespace: valet}\nspec:\n  broker: [valet]\n  filter: {attributes: {type: x}}\n  subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: gate}}\n".to_owned(),
            "[\"valet\"]",
        ),
        // Two env entries with the same name (x-kubernetes-list-type: map).
        (query_service("30", ONE_PORT, "            - name: VALET_FUNCTIONS\n              value: gate\n"), "duplicate list-map key"),
        // A Secret's stringData values are strings.
        ("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: valet}\nstringData: {plate-key: 5}\n".to_owned(), "5"),
        // A kind with no schema at all.
        ("apiVersion: serving.knative.dev/v9\nkind: Service\nmetadata: {name: q}\n".to_owned(), "no CRD schema"),
    ];
    for (yaml, needle) in cases {
        let doc = &parse_docs(&yaml, "test").unwrap()[0];
        let problems = schemas.problems(doc);
        assert_has(&problems, needle);
    }
    // ...while an int-or-string port given as a name or a number passes.
    for port in ["8080", "http1"] {
        let yaml = query_service("30", ONE_PORT, "")
            .replace("path: /healthz", &format!("path: /healthz\n              port: {port}"));
        let doc = &parse_docs(&yaml, "test").unwrap()[0];
        assert_eq!(schemas.problems(doc), Vec::<String>::new(), "port {port}");
    }
}

#[test]
fn rejects_root_and_single_stage_dockerfiles() {
    let good = std::fs::read_to_string(deploy_dir().join("Dockerfile")).unwrap();
    let no_user: String = good.lines().filter(|l| !l.starts_with("USER")).map(|l| format!("{l}\n")).collect();
    assert_has(&check_dockerfile(&no_user), "runtime stage sets no USER");
    for root in ["root", "0:0", "0"] {
        let as_root = format!("{good}\nUSER {root}\n");
        assert_has(&check_dockerfile(&as_root), "runs as root");
    }
    let unlocked = good.replace("--locked", "");
    assert_has(&check_dockerfile(&unlocked), "--locked");
    let single = "FROM rust:1.95-bookworm\nRUN cargo build --release -p valet --locked\nUSER 65532\nENTRYPOINT [\"/usr/local/bin/valet\", \"serve\"]\n";
    assert_has(&check_dockerfile(single), "want a builder and a runtime stage");
    let extra = format!("{good}\nCOPY . /app\n");
    assert_has(&check_dockerfile(&extra), "copies from the build context");
}

#[test]
fn optional_mosquitto_matches_the_configured_broker() {
    let text = std::fs::read_to_string(deploy_dir().join("mosquitto.yaml")).unwrap();
    let docs = parse_docs(&text, "mosquitto.yaml").unwrap();
    let service = docs.iter().find(|d| d.is("v1", "Service")).expect("a v1 Service");
    let namespace = service.value["metadata"]["namespace"].as_str().unwrap();
    let port = service.value["spec"]["ports"][0]["port"].as_i64().unwrap();
    let url = format!("mqtt://{}.{namespace}.svc:{port}", service.name());
    let config = load_manifests().into_iter().find(|d| d.is("v1", "ConfigMap") && d.name() == "valet-config").unwrap();
    assert_eq!(config.value["data"]["VALET_MQTT_BROKER"], url.as_str());
}
