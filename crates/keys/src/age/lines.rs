//! Identity lines as sops parses them (`SOPS_AGE_KEY`, key files, `SOPS_AGE_KEY_CMD` output and
//! the content of a passphrase-protected identity file once unlocked).

use super::BoxIdentity;
use super::prompt::AgePrompt;

/// One identity parsed from a line.
pub(super) struct Parsed {
    /// The X25519 recipient, when known: lets us skip identities for other recipients.
    pub(super) recipient: Option<String>,
    pub(super) identity: BoxIdentity,
}

/// Parses identity lines as sops does: blank and `#` lines skipped; each remaining line holds
/// one or more whitespace-separated `AGE-SECRET-KEY-1…` or `AGE-PLUGIN-…` identities.
/// Errors name the source and line, never the content.
pub(super) fn parse_identity_lines(
    source: &str,
    bytes: &[u8],
    prompt: &AgePrompt,
) -> Result<Vec<Parsed>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| format!("{source}: identities are not UTF-8"))?;
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        for word in line.split_whitespace() {
            if word.starts_with("AGE-PLUGIN-") {
                let parsed = word.parse::<age::plugin::Identity>().map_err(|e| {
                    format!(
                        "{source}: line {}: invalid plugin identity: {e}",
                        number + 1
                    )
                })?;
                let plugin = age::plugin::IdentityPluginV1::new(
                    parsed.plugin(),
                    std::slice::from_ref(&parsed),
                    prompt.clone(),
                )
                .map_err(|e| format!("{source}: line {}: {e}", number + 1))?;
                out.push(Parsed {
                    recipient: None,
                    identity: Box::new(plugin),
                });
            } else if word.starts_with("AGE-SECRET-KEY-1") {
                let id = word.parse::<age::x25519::Identity>().map_err(|_| {
                    format!("{source}: line {}: invalid age secret key", number + 1)
                })?;
                out.push(Parsed {
                    recipient: Some(id.to_public().to_string()),
                    identity: Box::new(id),
                });
            } else {
                return Err(format!(
                    "{source}: line {}: unknown identity type",
                    number + 1
                ));
            }
        }
    }
    Ok(out)
}
