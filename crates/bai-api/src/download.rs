//! Parsing download answers: `multipart/mixed` of tar archives, and the `id_container` key.

use std::io::Read as _;

use crate::model::DownloadedFile;

/// The largest single file the server hands out (and we accept).
pub const MAX_FILE_SIZE: u64 = 1024 * 1024;

/// One part of a multipart body.
#[derive(Debug)]
pub(crate) struct Part<'a> {
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || from > hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// The `boundary` parameter of a `multipart/*` content type.
pub(crate) fn boundary(content_type: &str) -> Option<String> {
    let m: mime::Mime = content_type.parse().ok()?;
    if m.type_() != mime::MULTIPART {
        return None;
    }
    m.get_param(mime::BOUNDARY).map(|b| b.as_str().to_owned())
}

/// Splits a multipart body (RFC 2046) into parts.
pub(crate) fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut pos = if body.starts_with(delim) {
        0
    } else {
        find(body, &[b"\r\n", delim].concat(), 0).ok_or("no multipart boundary in the body")? + 2
    };
    let next_delim = [b"\r\n", delim].concat();
    let mut parts = Vec::new();
    loop {
        pos += delim.len();
        if body[pos..].starts_with(b"--") {
            return Ok(parts);
        }
        // Skip transport padding up to the end of the boundary line.
        let eol = find(body, b"\r\n", pos).ok_or("truncated multipart boundary line")?;
        pos = eol + 2;
        let (headers, body_start) = if body[pos..].starts_with(b"\r\n") {
            (Vec::new(), pos + 2)
        } else {
            let end = find(body, b"\r\n\r\n", pos).ok_or("truncated multipart part headers")?;
            let text = String::from_utf8_lossy(&body[pos..end]);
            let headers = text
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            (headers, end + 4)
        };
        // Trust the part's Content-Length when it is there and consistent: the body may itself
        // contain the delimiter (then the sender broke RFC 2046, but aiohttp sends the length).
        let by_length = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .map(|len| body_start + len)
            .filter(|&end| {
                body.get(end..)
                    .is_some_and(|rest| rest.starts_with(&next_delim))
            });
        let end = match by_length {
            Some(end) => end,
            None => find(body, &next_delim, body_start).ok_or("multipart body not terminated")?,
        };
        parts.push(Part {
            headers,
            body: &body[body_start..end],
        });
        pos = end + 2;
    }
}

/// Reads the regular files out of one tar archive.
pub(crate) fn untar(data: &[u8]) -> Result<Vec<DownloadedFile>, String> {
    let mut archive = tar::Archive::new(data);
    let mut out = Vec::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("bad tar archive: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("bad tar entry: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry
            .header()
            .size()
            .map_err(|e| format!("bad tar size: {e}"))?;
        if size > MAX_FILE_SIZE {
            return Err(format!(
                "a file in the archive is larger than {MAX_FILE_SIZE} bytes"
            ));
        }
        let path = entry
            .path()
            .map_err(|e| format!("bad tar entry name: {e}"))?
            .into_owned();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.to_string_lossy().into_owned());
        let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("cannot read tar entry {name}: {e}"))?;
        out.push(DownloadedFile { name, data });
    }
    Ok(out)
}

/// Decodes a whole download answer: multipart/mixed of tars, or (tolerated) a bare tar.
pub(crate) fn decode_download(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<DownloadedFile>, String> {
    match boundary(content_type) {
        Some(b) => {
            let mut files = Vec::new();
            for part in parse_multipart(body, &b)? {
                let enc = part
                    .headers
                    .iter()
                    .find(|(k, _)| k == "content-encoding")
                    .map(|(_, v)| v.to_ascii_lowercase());
                if let Some(enc) = enc {
                    if enc != "identity" {
                        return Err(format!("unsupported part encoding {enc:?}"));
                    }
                }
                files.extend(untar(part.body)?);
            }
            Ok(files)
        }
        None if content_type.starts_with("multipart/") => {
            Err("multipart answer without a boundary".to_owned())
        }
        None => untar(body),
    }
}

/// Cuts everything before the first `-----` (as the WebUI does) and checks it is a key.
///
/// The junk before the key may be binary (not UTF-8), so the marker is found in the bytes
/// first; only the key itself, from the marker on, must be text.
pub(crate) fn strip_key(data: &[u8]) -> Result<String, String> {
    const MARK: &[u8] = b"-----";
    let start = data
        .windows(MARK.len())
        .position(|w| w == MARK)
        .ok_or_else(|| "the key file holds no PEM/OpenSSH key".to_owned())?;
    let text = std::str::from_utf8(&data[start..])
        .map_err(|_| "the key in the key file is not text".to_owned())?;
    Ok(text.to_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
        b.into_inner().expect("tar")
    }

    pub(crate) fn multipart_of(boundary: &str, tars: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for t in tars {
            out.extend_from_slice(format!("--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Encoding: identity\r\nContent-Length: {}\r\n\r\n", t.len()).as_bytes());
            out.extend_from_slice(t);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        out
    }

    #[test]
    fn multipart_of_tars() {
        // Binary content that contains CRLF and dashes must survive.
        let a = tar_of("id_container", b"-----BEGIN KEY-----\r\n--x\r\n");
        let b = tar_of("notes.txt", b"hello");
        let body = multipart_of("XyZ123", &[a, b]);
        let files = decode_download("multipart/mixed; boundary=XyZ123", &body).expect("decode");
        assert_eq!(files.len(), 2);
        assert_eq!(files[0].name, "id_container");
        assert_eq!(files[0].data, b"-----BEGIN KEY-----\r\n--x\r\n");
        assert_eq!(files[1].name, "notes.txt");
        assert_eq!(files[1].data, b"hello");
        // Quoted boundary, preamble.
        let mut pre = b"preamble\r\n".to_vec();
        pre.extend_from_slice(&body);
        let files = decode_download("multipart/mixed; boundary=\"XyZ123\"", &pre).expect("decode");
        assert_eq!(files.len(), 2);
    }

    #[test]
    fn multipart_errors_and_bare_tar() {
        assert!(decode_download("multipart/mixed; boundary=b", b"garbage").is_err());
        assert!(decode_download("multipart/mixed; boundary=b", b"--b\r\n\r\nabc").is_err());
        let files = decode_download("application/x-tar", &tar_of("a", b"1")).expect("tar");
        assert_eq!(files[0].name, "a");
        let empty = decode_download("multipart/mixed; boundary=b", b"--b--\r\n").expect("empty");
        assert!(empty.is_empty());
    }

    #[test]
    fn tar_larger_than_limit_is_refused() {
        let big = vec![0u8; (MAX_FILE_SIZE + 1) as usize];
        assert!(untar(&tar_of("big", &big)).is_err());
    }

    #[test]
    fn key_stripping() {
        assert_eq!(
            strip_key(
                b"\x00junk\n-----BEGIN RSA PRIVATE KEY-----\nAA\n-----END RSA PRIVATE KEY-----\n"
            )
            .expect("key"),
            "-----BEGIN RSA PRIVATE KEY-----\nAA\n-----END RSA PRIVATE KEY-----\n"
        );
        assert!(strip_key(b"no key here").is_err());
        assert!(strip_key(&[0xff, 0xfe]).is_err());
        // Leading binary junk that is not UTF-8 (and contains a lone dash) is cut off.
        let mut data = vec![0xff, 0xfe, 0x00, 0xc3, b'-', 0x80, 0x9f, b'\n'];
        data.extend_from_slice(
            b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n",
        );
        assert_eq!(
            strip_key(&data).expect("key"),
            "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        // After the marker, the key itself must be text.
        assert!(strip_key(b"junk-----BEGIN\xff").is_err());
    }
}
