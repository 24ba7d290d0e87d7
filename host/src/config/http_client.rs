//! The HTTP client settings inline in a scrape config (`basic_auth`,
//! `authorization`, `oauth2`, `bearer_token*`, `tls_config`, proxy settings,
//! `http_headers`, `follow_redirects`, `enable_http2`): checked as Prometheus
//! checks them and printed as Prometheus prints them. Secrets are printed in
//! clear here; the server redacts them.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::fields::{Fields, KeyError, scalar_text};

const BASIC_AUTH: &[&str] =
    &["username", "username_file", "username_ref", "password", "password_file", "password_ref"];
const AUTHORIZATION: &[&str] = &["type", "credentials", "credentials_file", "credentials_ref"];
const OAUTH2_STRINGS: &[&str] = &[
    "client_id",
    "client_secret",
    "client_secret_file",
    "client_secret_ref",
    "client_certificate_key_id",
    "client_certificate_key",
    "client_certificate_key_file",
    "client_certificate_key_ref",
    "grant_type",
    "signature_algorithm",
    "iss",
    "audience",
    "token_url",
];
const TLS_STRINGS: &[&str] = &[
    "ca",
    "cert",
    "key",
    "ca_file",
    "cert_file",
    "key_file",
    "ca_ref",
    "cert_ref",
    "key_ref",
    "server_name",
];
const TLS_VERSIONS: &[&str] = &["TLS10", "TLS11", "TLS12", "TLS13"];
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SIGNATURE_ALGORITHMS: &[&str] = &["RS256", "RS384", "RS512"];
/// Headers `http_headers` may not set (Prometheus's list, canonical form).
const RESERVED_HEADERS: &[&str] = &[
    "Authorization",
    "Host",
    "Content-Encoding",
    "Content-Length",
    "Content-Type",
    "User-Agent",
    "Connection",
    "Keep-Alive",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Www-Authenticate",
    "Accept-Encoding",
    "X-Prometheus-Remote-Write-Version",
    "X-Prometheus-Remote-Read-Version",
    "X-Prometheus-Scrape-Timeout-Seconds",
    "X-Amz-Date",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
];

/// Reads the HTTP client keys of a scrape config into `out`, printed.
pub fn print_http_client(
    fields: &mut Fields,
    out: &mut Map<String, Value>,
    ignored: &mut Vec<String>,
) -> Result<(), KeyError> {
    let basic_auth =
        fields.section("basic_auth")?.map(|f| strings_section(f, BASIC_AUTH, ignored)).transpose()?;
    let authorization =
        fields.section("authorization")?.map(|f| strings_section(f, AUTHORIZATION, ignored)).transpose()?;
    let oauth2 = fields.section("oauth2")?.map(|f| oauth2(f, ignored)).transpose()?;
    let bearer_token = fields.string("bearer_token")?.unwrap_or_default();
    let bearer_token_file = fields.string("bearer_token_file")?.unwrap_or_default();
    let tls_config = fields.section("tls_config")?.map(|f| tls_config(f, ignored)).transpose()?.flatten();
    let follow_redirects = fields.boolean("follow_redirects")?.unwrap_or(true);
    let enable_http2 = fields.boolean("enable_http2")?.unwrap_or(true);
    proxy(fields, out)?;
    if let Some(headers) = fields.section("http_headers")? {
        out.insert("http_headers".into(), http_headers(headers, ignored)?);
    }

    // The combinations Prometheus refuses.
    let bearer = !bearer_token.is_empty() || !bearer_token_file.is_empty();
    let whole = |message: &str| KeyError::new(fields.path(), message);
    if !bearer_token.is_empty() && !bearer_token_file.is_empty() {
        return Err(whole("bearer_token and bearer_token_file exclude each other"));
    }
    if (basic_auth.is_some() || oauth2.is_some()) && bearer {
        return Err(whole("choose one of basic_auth, oauth2 and bearer_token[_file]"));
    }
    if let Some(basic) = &basic_auth {
        for (what, keys) in [
            ("username, username_file and username_ref", ["username", "username_file", "username_ref"]),
            ("password, password_file and password_ref", ["password", "password_file", "password_ref"]),
        ] {
            if present(basic, &keys) > 1 {
                return Err(fields.error("basic_auth", format!("set only one of {what}")));
            }
        }
    }
    let authorization = match authorization {
        Some(mut authz) => {
            let key = "authorization";
            if bearer {
                return Err(fields.error(key, "cannot be combined with bearer_token or bearer_token_file"));
            }
            if present(&authz, &["credentials", "credentials_file", "credentials_ref"]) > 1 {
                return Err(
                    fields.error(key, "set only one of credentials, credentials_file and credentials_ref")
                );
            }
            let kind = authz.get("type").and_then(Value::as_str).unwrap_or_default().trim().to_string();
            let kind = if kind.is_empty() { "Bearer".to_string() } else { kind };
            if kind.eq_ignore_ascii_case("basic") {
                return Err(fields.error(key, "type \"basic\" is not allowed here: use basic_auth"));
            }
            authz.insert("type".into(), Value::String(kind));
            if basic_auth.is_some() || oauth2.is_some() {
                return Err(whole("choose one of basic_auth, oauth2 and authorization"));
            }
            Some(authz)
        }
        // The deprecated `bearer_token*` keys print as `authorization`.
        None if !bearer_token.is_empty() => Some(bearer_authorization("credentials", bearer_token)),
        None if !bearer_token_file.is_empty() => {
            Some(bearer_authorization("credentials_file", bearer_token_file))
        }
        None => None,
    };
    if let Some(oauth2) = &oauth2 {
        check_oauth2(oauth2, basic_auth.is_some()).map_err(|message| fields.error("oauth2", message))?;
    }

    for (key, section) in [("basic_auth", basic_auth), ("authorization", authorization), ("oauth2", oauth2)] {
        if let Some(section) = section {
            out.insert(key.into(), Value::Object(section));
        }
    }
    if let Some(tls) = tls_config {
        out.insert("tls_config".into(), Value::Object(tls));
    }
    out.insert("follow_redirects".into(), Value::Bool(follow_redirects));
    out.insert("enable_http2".into(), Value::Bool(enable_http2));
    Ok(())
}

fn bearer_authorization(key: &str, value: String) -> Map<String, Value> {
    Map::from_iter([("type".to_string(), Value::from("Bearer")), (key.to_string(), Value::String(value))])
}

/// How many of `keys` are set (printed sections hold only non-empty strings).
fn present(section: &Map<String, Value>, keys: &[&str]) -> usize {
    keys.iter().filter(|k| section.contains_key(**k)).count()
}

/// A section of optional strings, empty ones left out as Prometheus does.
fn strings_section(
    mut f: Fields,
    keys: &[&str],
    ignored: &mut Vec<String>,
) -> Result<Map<String, Value>, KeyError> {
    let mut out = Map::new();
    for key in keys {
        if let Some(value) = f.string(key)?.filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), Value::String(value));
        }
    }
    f.finish(ignored);
    Ok(out)
}

fn oauth2(mut f: Fields, ignored: &mut Vec<String>) -> Result<Map<String, Value>, KeyError> {
    let mut out = Map::new();
    for key in OAUTH2_STRINGS {
        if let Some(value) = f.string(key)?.filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), Value::String(value));
        }
    }
    match f.raw("claims") {
        None | Some(Value::Null) => {}
        Some(Value::Object(claims)) if claims.is_empty() => {}
        Some(claims @ Value::Object(_)) => {
            out.insert("claims".into(), claims.clone());
        }
        Some(_) => return Err(f.error("claims", "must be a mapping")),
    }
    if let Some(scopes) = f.strings("scopes")?.filter(|s| !s.is_empty()) {
        out.insert("scopes".into(), Value::from(scopes));
    }
    if let Some(params) = f.string_map("endpoint_params")?.filter(|p| !p.is_empty()) {
        out.insert(
            "endpoint_params".into(),
            Value::Object(params.into_iter().map(|(k, v)| (k, v.into())).collect()),
        );
    }
    if let Some(tls) = f.section("tls_config")?.map(|t| tls_config(t, ignored)).transpose()?.flatten() {
        out.insert("tls_config".into(), Value::Object(tls));
    }
    proxy(&mut f, &mut out)?;
    f.finish(ignored);
    Ok(out)
}

fn check_oauth2(oauth2: &Map<String, Value>, with_basic_auth: bool) -> Result<(), String> {
    let text = |key: &str| oauth2.get(key).and_then(Value::as_str).unwrap_or_default();
    if with_basic_auth {
        return Err("choose one of basic_auth, oauth2 and authorization".into());
    }
    if text("client_id").is_empty() {
        return Err("client_id is required".into());
    }
    if text("token_url").is_empty() {
        return Err("token_url is required".into());
    }
    if text("grant_type") == JWT_BEARER {
        if present(
            oauth2,
            &["client_certificate_key", "client_certificate_key_file", "client_certificate_key_ref"],
        ) > 1
        {
            return Err(
                "set only one of client_certificate_key, client_certificate_key_file and client_certificate_key_ref"
                    .into(),
            );
        }
        let algorithm = text("signature_algorithm");
        if !algorithm.is_empty() && !SIGNATURE_ALGORITHMS.contains(&algorithm) {
            return Err("signature_algorithm must be RS256, RS384 or RS512".into());
        }
    } else if present(oauth2, &["client_secret", "client_secret_file", "client_secret_ref"]) > 1 {
        return Err("set only one of client_secret, client_secret_file and client_secret_ref".into());
    }
    Ok(())
}

/// `tls_config`; `None` when every field is unset, as Prometheus then leaves
/// the section out.
fn tls_config(mut f: Fields, ignored: &mut Vec<String>) -> Result<Option<Map<String, Value>>, KeyError> {
    let mut out = Map::new();
    for key in TLS_STRINGS {
        if let Some(value) = f.string(key)?.filter(|v| !v.is_empty()) {
            out.insert(key.to_string(), Value::String(value));
        }
    }
    for key in ["min_version", "max_version"] {
        match f.raw(key) {
            None | Some(Value::Null) => {}
            Some(value) => match scalar_text(value).filter(|v| TLS_VERSIONS.contains(&v.as_str())) {
                Some(version) => {
                    out.insert(key.into(), Value::String(version));
                }
                None => {
                    return Err(f.error(key, format!("must be TLS10, TLS11, TLS12 or TLS13, got {value}")));
                }
            },
        }
    }
    let insecure = f.boolean("insecure_skip_verify")?.unwrap_or(false);
    for (what, keys) in [
        ("ca, ca_file and ca_ref", ["ca", "ca_file", "ca_ref"]),
        ("cert, cert_file and cert_ref", ["cert", "cert_file", "cert_ref"]),
        ("key, key_file and key_ref", ["key", "key_file", "key_ref"]),
    ] {
        if present(&out, &keys) > 1 {
            return Err(KeyError::new(f.path(), format!("set only one of {what}")));
        }
    }
    let cert = present(&out, &["cert", "cert_file", "cert_ref"]) > 0;
    let key = present(&out, &["key", "key_file", "key_ref"]) > 0;
    if cert && !key {
        return Err(KeyError::new(f.path(), "a client certificate needs a key (key, key_file or key_ref)"));
    }
    if key && !cert {
        return Err(KeyError::new(
            f.path(),
            "a client key needs a certificate (cert, cert_file or cert_ref)",
        ));
    }
    f.finish(ignored);
    if out.is_empty() && !insecure {
        return Ok(None);
    }
    out.insert("insecure_skip_verify".into(), Value::Bool(insecure));
    Ok(Some(out))
}

/// The proxy keys (inline in the HTTP client and in `oauth2`).
fn proxy(f: &mut Fields, out: &mut Map<String, Value>) -> Result<(), KeyError> {
    let url = f.string("proxy_url")?.unwrap_or_default();
    let no_proxy = f.string("no_proxy")?.unwrap_or_default();
    let from_environment = f.boolean("proxy_from_environment")?.unwrap_or(false);
    let connect_header = f.string_lists("proxy_connect_header")?.unwrap_or_default();
    let message = if !connect_header.is_empty() && !from_environment && url.is_empty() {
        Some("proxy_connect_header needs proxy_url or proxy_from_environment")
    } else if from_environment && !url.is_empty() {
        Some("proxy_from_environment and proxy_url exclude each other")
    } else if from_environment && !no_proxy.is_empty() {
        Some("proxy_from_environment and no_proxy exclude each other")
    } else if url.is_empty() && !no_proxy.is_empty() {
        Some("no_proxy needs proxy_url")
    } else {
        None
    };
    if let Some(message) = message {
        return Err(KeyError::new(f.path(), message));
    }
    for (key, value) in [("proxy_url", url), ("no_proxy", no_proxy)] {
        if !value.is_empty() {
            out.insert(key.into(), Value::String(value));
        }
    }
    if from_environment {
        out.insert("proxy_from_environment".into(), Value::Bool(true));
    }
    if !connect_header.is_empty() {
        out.insert("proxy_connect_header".into(), string_lists(connect_header));
    }
    Ok(())
}

/// `http_headers`: `{<name>: {values, secrets, files}}`.
fn http_headers(mut headers: Fields, ignored: &mut Vec<String>) -> Result<Value, KeyError> {
    let mut out = Map::new();
    for name in headers.keys() {
        let canonical = canonical_header(name);
        if RESERVED_HEADERS.contains(&canonical.as_str()) {
            return Err(headers.error(name, format!("{canonical:?} is reserved and cannot be set")));
        }
        let mut printed = Map::new();
        if let Some(mut header) = headers.section(name)? {
            for key in ["values", "secrets", "files"] {
                if let Some(list) = header.strings(key)?.filter(|l| !l.is_empty()) {
                    printed.insert(key.into(), Value::from(list));
                }
            }
            header.finish(ignored);
        }
        out.insert(name.clone(), Value::Object(printed));
    }
    Ok(Value::Object(out))
}

/// Go's canonical header form: `x-api-key` → `X-Api-Key`.
fn canonical_header(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper { c.to_ascii_uppercase() } else { c.to_ascii_lowercase() };
            upper = c == '-';
            out
        })
        .collect()
}

pub fn string_lists(map: BTreeMap<String, Vec<String>>) -> Value {
    Value::Object(map.into_iter().map(|(k, v)| (k, Value::from(v))).collect())
}
