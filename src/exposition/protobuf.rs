//! Length-delimited protobuf streams of `MetricFamily`, as client_golang pushes and scrapes them.

use prost::Message;

use crate::proto::client::MetricFamily;

/// Decodes a stream of varint-length-prefixed families until the body ends. An empty body is
/// an empty push.
pub fn decode_delimited(mut body: &[u8]) -> Result<Vec<MetricFamily>, prost::DecodeError> {
    let mut families = Vec::new();
    while !body.is_empty() {
        families.push(MetricFamily::decode_length_delimited(&mut body)?);
    }
    Ok(families)
}

pub fn encode_delimited(family: &MetricFamily, out: &mut Vec<u8>) {
    family.encode_length_delimited(out).expect("a Vec grows as needed, so encoding cannot run out of room");
}

/// Writes one delimited family whose `metric` records come already encoded, in parts: the
/// header (name, help, type) is encoded here, the records are copied as they are. Protobuf
/// concatenates repeated fields, so parts from many groups make one family.
pub fn encode_delimited_parts(header: &MetricFamily, parts: &[&[u8]], out: &mut Vec<u8>) {
    let head = header.encode_to_vec();
    let len = head.len() + parts.iter().map(|p| p.len()).sum::<usize>();
    prost::encoding::encode_varint(len as u64, out);
    out.extend_from_slice(&head);
    for part in parts {
        out.extend_from_slice(part);
    }
}

/// Whether a `Content-Type` names delimited protobuf, by the reference's exact rule: the media
/// type `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily` and
/// `encoding=delimited`. Anything else, an unparsable header included, is text.
pub fn is_delimited_protobuf(content_type: &str) -> bool {
    // Most pushes are text: settle those without parsing the header.
    if !content_type.as_bytes().windows(8).any(|w| w.eq_ignore_ascii_case(b"protobuf")) {
        return false;
    }
    let Some(media) = MediaType::parse(content_type) else {
        return false;
    };
    media.essence == "application/vnd.google.protobuf"
        && media.param("proto") == Some("io.prometheus.client.MetricFamily")
        && media.param("encoding") == Some("delimited")
}

/// A parsed media type: lower-cased type and parameter names, parameter values as given.
pub struct MediaType {
    pub essence: String,
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parses `type/subtype; name=value; name="quoted"`. `None` when it is malformed or names
    /// a parameter twice, as Go's `mime.ParseMediaType` refuses such headers.
    pub fn parse(header: &str) -> Option<MediaType> {
        let mut parts = header.split(';');
        let essence = parts.next()?.trim().to_ascii_lowercase();
        let (kind, sub) = essence.split_once('/')?;
        if kind.is_empty() || sub.is_empty() || !essence.bytes().all(is_token_byte_or_slash) {
            return None;
        }
        let mut params: Vec<(String, String)> = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (name, value) = part.split_once('=')?;
            let name = name.trim().to_ascii_lowercase();
            let value = value.trim();
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).to_string();
            if name.is_empty() || params.iter().any(|(n, _)| *n == name) {
                return None;
            }
            params.push((name, value));
        }
        Some(MediaType { essence, params })
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

fn is_token_byte_or_slash(b: u8) -> bool {
    b == b'/' || (b.is_ascii_graphic() && !b"()<>@,;:\\\"[]?=".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::client::{Gauge, Metric, MetricType};

    #[test]
    fn content_type_rules_match_the_reference() {
        let go = "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
        assert!(is_delimited_protobuf(go));
        assert!(is_delimited_protobuf(
            "Application/Vnd.Google.Protobuf;Encoding=delimited;PROTO=\"io.prometheus.client.MetricFamily\""
        ));
        assert!(!is_delimited_protobuf("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily"));
        assert!(!is_delimited_protobuf(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=Delimited"
        ));
        assert!(!is_delimited_protobuf("text/plain; version=0.0.4"));
        assert!(!is_delimited_protobuf(""));
    }

    #[test]
    fn decodes_what_it_encodes() {
        let family = MetricFamily {
            name: Some("a".into()),
            r#type: Some(MetricType::Gauge as i32),
            metric: vec![Metric { gauge: Some(Gauge { value: Some(1.0) }), ..Default::default() }],
            ..Default::default()
        };
        let mut body = Vec::new();
        encode_delimited(&family, &mut body);
        encode_delimited(&family, &mut body);
        assert_eq!(decode_delimited(&body).unwrap(), vec![family.clone(), family]);
        assert!(decode_delimited(&body[..body.len() - 1]).is_err());
        assert!(decode_delimited(&[]).unwrap().is_empty());
    }

    #[test]
    fn parts_concatenate_into_one_family() {
        let metric = |v: f64| Metric { gauge: Some(Gauge { value: Some(v) }), ..Default::default() };
        let header =
            MetricFamily { name: Some("a".into()), r#type: Some(MetricType::Gauge as i32), ..Default::default() };
        let (mut first, mut second) = (Vec::new(), Vec::new());
        prost::encoding::message::encode(4, &metric(1.0), &mut first);
        prost::encoding::message::encode(4, &metric(2.0), &mut second);
        let mut body = Vec::new();
        encode_delimited_parts(&header, &[&first, &second], &mut body);
        let want = MetricFamily { metric: vec![metric(1.0), metric(2.0)], ..header };
        assert_eq!(decode_delimited(&body).unwrap(), vec![want]);
    }
}
