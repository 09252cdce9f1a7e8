//! Base64 as Go's `encoding/base64.StdEncoding`: standard alphabet, padding required, CR and LF
//! ignored anywhere (Ruby's kubesealr wraps at 60 columns), non-zero trailing bits accepted.

use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig};

use crate::{Error, Result};

const GO_STD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

/// Encodes as one line of padded standard base64.
pub fn encode(bytes: &[u8]) -> String {
    GO_STD.encode(bytes)
}

/// Decodes padded standard base64, skipping `\r` and `\n`. Errors report the offset of the bad
/// byte in the input as given (Go's `illegal base64 data at input byte N`).
pub fn decode(text: &str) -> Result<Vec<u8>> {
    let bytes = text.as_bytes();
    let (clean, positions): (Vec<u8>, Vec<usize>) =
        if bytes.contains(&b'\r') || bytes.contains(&b'\n') {
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b != b'\r' && **b != b'\n')
                .map(|(i, b)| (*b, i))
                .unzip()
        } else {
            (bytes.to_vec(), Vec::new())
        };
    let original = |i: usize| positions.get(i).copied().unwrap_or(i);
    GO_STD.decode(&clean).map_err(|e| {
        let offset = match e {
            base64::DecodeError::InvalidByte(i, _)
            | base64::DecodeError::InvalidLastSymbol(i, _) => original(i),
            base64::DecodeError::InvalidLength(_) | base64::DecodeError::InvalidPadding => {
                // Go reports the offset where the incomplete quantum starts.
                original(clean.len() - clean.len() % 4)
            }
        };
        Error::Base64 { offset, item: None }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_go_leniency() {
        let data: Vec<u8> = (0u8..=255).collect();
        let text = encode(&data);
        assert_eq!(decode(&text).ok(), Some(data.clone()));
        // Wrapped at 60 columns with CRLF, as Ruby's Base64.encode64 (with \n) or Windows editors.
        let wrapped: String = text
            .as_bytes()
            .chunks(60)
            .map(|c| format!("{}\r\n", String::from_utf8_lossy(c)))
            .collect();
        assert_eq!(decode(&wrapped).ok(), Some(data));
        // Trailing bits that are not zero: Go's StdEncoding accepts "YR==" as "a".
        assert_eq!(decode("YR==").ok(), Some(b"a".to_vec()));
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in ["YQ", "YQ=", "YQ-_", "Y Q==", "YWJj$A=="] {
            assert!(
                matches!(decode(bad), Err(Error::Base64 { .. })),
                "{bad} decoded"
            );
        }
        match decode("YWJj\n$A==") {
            Err(Error::Base64 { offset, .. }) => assert_eq!(offset, 5),
            other => panic!("unexpected {other:?}"),
        }
    }
}
