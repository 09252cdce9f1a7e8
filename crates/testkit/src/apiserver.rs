//! The API server's own request counters (`apiserver_request_total`), for benchmarks that count
//! what a controller's reconciliations cost.

use std::collections::BTreeMap;

/// Requests served so far on `resources`, by `VERB resource[/subresource]`, without LIST and
/// WATCH (informers' lists and watches are not per-object work).
pub async fn api_calls(
    client: &kube::Client,
    resources: &[&str],
) -> anyhow::Result<BTreeMap<String, f64>> {
    // A GET built by kube, pointed at /metrics (keeps `http` out of the dependencies).
    let mut req = kube::core::Request::new("/api/v1/namespaces").list(&Default::default())?;
    *req.uri_mut() = "/metrics".parse()?;
    let text = client.request_text(req).await?;
    let mut calls = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(k)?.strip_prefix("=\""))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        let (verb, resource) = (label("verb"), label("resource"));
        if verb == "LIST" || verb == "WATCH" || !resources.contains(&resource.as_str()) {
            continue;
        }
        let subresource = label("subresource");
        let key = if subresource.is_empty() {
            format!("{verb} {resource}")
        } else {
            format!("{verb} {resource}/{subresource}")
        };
        *calls.entry(key).or_insert(0.0) += value.parse::<f64>().unwrap_or(0.0);
    }
    Ok(calls)
}

/// The calls between two [`api_calls`] snapshots: the total and `KEY=N` parts.
pub fn calls_between(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (f64, String) {
    let mut total = 0.0;
    let mut parts = Vec::new();
    for (k, v) in after {
        let d = v - before.get(k).copied().unwrap_or(0.0);
        if d > 0.0 {
            total += d;
            parts.push(format!("{k}={d}"));
        }
    }
    (total, parts.join(" "))
}
