//! Parsing download answers: `multipart/mixed` of tar archives, and the `id_container` key.
//!
//! Over 500 lines on purpose: the decoder itself is about 240; the rest is its unit and
//! property tests (hostile multipart framing, tar sizes, truncation, key junk), which belong
//! next to the arithmetic they guard.

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
///
/// Every length and offset comes from the server, so all arithmetic on them is checked and
/// every slice is taken with `get`: a hostile body is an error, never a panic.
pub(crate) fn parse_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<Part<'a>>, String> {
    const TRUNCATED: &str = "truncated multipart body";
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let next_delim = [b"\r\n", delim].concat();
    let mut pos = if body.starts_with(delim) {
        0
    } else {
        find(body, &next_delim, 0).ok_or("no multipart boundary in the body")? + 2
    };
    let mut parts = Vec::new();
    loop {
        pos = pos.checked_add(delim.len()).ok_or(TRUNCATED)?;
        let rest = body.get(pos..).ok_or(TRUNCATED)?;
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Skip transport padding up to the end of the boundary line.
        let eol = find(body, b"\r\n", pos).ok_or("truncated multipart boundary line")?;
        pos = eol + 2;
        let (headers, body_start) = if body.get(pos..).ok_or(TRUNCATED)?.starts_with(b"\r\n") {
            (Vec::new(), pos + 2)
        } else {
            let end = find(body, b"\r\n\r\n", pos).ok_or("truncated multipart part headers")?;
            let text = String::from_utf8_lossy(body.get(pos..end).ok_or(TRUNCATED)?);
            let headers = text
                .split("\r\n")
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            (headers, end + 4)
        };
        // Trust the part's Content-Length when it is there and consistent: the body may itself
        // contain the delimiter (then the sender broke RFC 2046, but aiohttp sends the length).
        // The length is the server's number: one that is no number, overflows or reaches past
        // the body is an error (the body was cut short, or the server lies).
        let by_length = match headers.iter().find(|(k, _)| k == "content-length") {
            None => None,
            Some((_, v)) => {
                let end = v
                    .parse::<u64>()
                    .ok()
                    .and_then(|len| usize::try_from(len).ok())
                    .and_then(|len| body_start.checked_add(len))
                    .ok_or_else(|| format!("bad multipart part Content-Length {v:?}"))?;
                let rest = body.get(end..).ok_or(TRUNCATED)?;
                rest.starts_with(&next_delim).then_some(end)
            }
        };
        let end = match by_length {
            Some(end) => end,
            None => find(body, &next_delim, body_start).ok_or("multipart body not terminated")?,
        };
        parts.push(Part {
            headers,
            body: body.get(body_start..end).ok_or(TRUNCATED)?,
        });
        // `end` is where `next_delim` starts; `pos` is then the start of the delimiter proper.
        pos = end.checked_add(2).ok_or(TRUNCATED)?;
    }
}

/// The size of a tar block (headers, data padding, the end-of-archive marker).
const TAR_BLOCK: u64 = 512;

/// Reads the regular files out of one tar archive.
///
/// Sizes come from the server: each is checked against [`MAX_FILE_SIZE`] before anything is
/// allocated (including a PAX `size` that overrides the header's), a short read is an error,
/// and so is an archive that stops without its end-of-archive block (a truncated archive would
/// otherwise pass for one with fewer files).
pub(crate) fn untar(data: &[u8]) -> Result<Vec<DownloadedFile>, String> {
    let mut archive = tar::Archive::new(data);
    let mut out = Vec::new();
    // Where the data of the last entry ends: the end-of-archive block must come after it.
    let mut data_end: u64 = 0;
    {
        let entries = archive
            .entries()
            .map_err(|e| format!("bad tar archive: {e}"))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| format!("bad tar entry: {e}"))?;
            let kind = entry.header().entry_type();
            // A sparse entry's `size()` is its expanded size, not what the archive stores.
            let stored = if kind.is_gnu_sparse() {
                0
            } else {
                entry.size()
            };
            data_end = entry
                .raw_file_position()
                .checked_add(stored)
                .ok_or("tar entry size overflows")?;
            if !kind.is_file() {
                continue;
            }
            // `Entry::size` is the PAX `size` when there is one, which overrides the header.
            let size = entry.size();
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
            let mut data = Vec::with_capacity(
                usize::try_from(size).map_err(|_| "tar entry size overflows".to_owned())?,
            );
            entry
                .by_ref()
                .take(MAX_FILE_SIZE)
                .read_to_end(&mut data)
                .map_err(|e| format!("cannot read tar entry {name}: {e}"))?;
            if u64::try_from(data.len()).ok() != Some(size) {
                return Err(format!("truncated tar entry {name}"));
            }
            out.push(DownloadedFile { name, data });
        }
    }
    // The tar crate stops at an all-zero header block *or* at the end of the input; only the
    // former ends a complete archive. Reading a slice advances it, so what is left tells how
    // far the reader got: after a zero block it stopped one block past a header position at
    // or after `data_end`; at the end of the input it stopped less than a block past it.
    let rest = archive.into_inner();
    let consumed = data
        .len()
        .checked_sub(rest.len())
        .ok_or("bad tar archive")?;
    let ended_on_marker = u64::try_from(consumed)
        .ok()
        .and_then(|c| c.checked_sub(TAR_BLOCK))
        .is_some_and(|header_pos| header_pos >= data_end)
        && data
            .get(consumed.saturating_sub(512)..consumed)
            .is_some_and(|b| b.iter().all(|&x| x == 0));
    if !ended_on_marker {
        return Err("truncated tar archive (no end-of-archive block)".to_owned());
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
                // An empty part is no archive at all (the real manager's answer when the
                // agent had nothing to send), not a truncated one: it holds no file.
                if !part.body.is_empty() {
                    files.extend(untar(part.body)?);
                }
            }
            Ok(files)
        }
        None if content_type.starts_with("multipart/") => {
            Err("multipart answer without a boundary".to_owned())
        }
        None => untar(body),
    }
}

/// Cuts everything before the key (as the WebUI does) and checks what is left is text.
///
/// The WebUI cuts before the first `-----`; that breaks when the junk in front itself holds
/// dashes (`junk-` + `-----BEGIN` would keep one dash too many). So the cut is before the first
/// `-----BEGIN`, and only without one before the first `-----`. The junk may be binary (not
/// UTF-8), so the marker is found in the bytes; only the key itself, from the marker on, must
/// be text.
pub(crate) fn strip_key(data: &[u8]) -> Result<String, String> {
    const BEGIN: &[u8] = b"-----BEGIN";
    const MARK: &[u8] = b"-----";
    let at = |mark: &[u8]| data.windows(mark.len()).position(|w| w == mark);
    let start = at(BEGIN)
        .or_else(|| at(MARK))
        .ok_or_else(|| "the key file holds no PEM/OpenSSH key".to_owned())?;
    let key = data.get(start..).unwrap_or_default();
    let text =
        std::str::from_utf8(key).map_err(|_| "the key in the key file is not text".to_owned())?;
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
        // The real manager's answer for a file its (dummy) agent could not give: one empty part.
        let empty_part = decode_download(
            "multipart/mixed; boundary=b",
            b"--b\r\nContent-Encoding: identity\r\n\r\n\r\n--b--\r\n",
        )
        .expect("an empty part is no file, not an error");
        assert!(empty_part.is_empty());
    }

    #[test]
    fn tar_larger_than_limit_is_refused() {
        let big = vec![0u8; (MAX_FILE_SIZE + 1) as usize];
        assert!(untar(&tar_of("big", &big)).is_err());
    }

    /// A tar whose PAX `size` record says `pax_size` while the header says `header_size`,
    /// followed by `data`.
    fn tar_with_pax_size(header_size: u64, pax_size: u64, data: &[u8]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let record = {
            let body = format!(" size={pax_size}\n");
            // The record length counts its own digits.
            let mut len = body.len() + 1;
            while format!("{len}{body}").len() != len {
                len += 1;
            }
            format!("{len}{body}")
        };
        let mut x = tar::Header::new_ustar();
        x.set_entry_type(tar::EntryType::XHeader);
        x.set_size(record.len() as u64);
        x.set_mode(0o600);
        x.set_cksum();
        b.append_data(&mut x, "PaxHeader", record.as_bytes())
            .expect("pax");
        let mut h = tar::Header::new_ustar();
        h.set_size(header_size);
        h.set_mode(0o600);
        h.set_cksum();
        b.append_data(&mut h, "big", data).expect("append");
        b.into_inner().expect("tar")
    }

    #[test]
    fn part_content_length_that_overflows_is_an_error_not_a_panic() {
        for len in [
            u64::MAX.to_string(),
            usize::MAX.to_string(),
            (usize::MAX - 10).to_string(),
            "99999999999999999999999999".to_owned(),
            "-1".to_owned(),
            "".to_owned(),
        ] {
            let body = format!("--b\r\nContent-Length: {len}\r\n\r\nabc\r\n--b--\r\n");
            let r = decode_download("multipart/mixed; boundary=b", body.as_bytes());
            assert!(r.is_err(), "Content-Length {len:?}: {r:?}");
        }
    }

    #[test]
    fn part_content_length_past_the_end_is_truncated() {
        // The body was cut short: the length reaches past it. The delimiter inside the data
        // must not be taken for the end of the part.
        let t = tar_of("a", b"x\r\n--b\r\n\r\n");
        let mut body = format!("--b\r\nContent-Length: {}\r\n\r\n", t.len()).into_bytes();
        body.extend_from_slice(&t[..600]);
        let r = decode_download("multipart/mixed; boundary=b", &body);
        assert!(r.is_err(), "{r:?}");
    }

    #[test]
    fn pax_size_cannot_get_a_file_past_the_size_limit() {
        let big = vec![b'x'; (MAX_FILE_SIZE + 1) as usize];
        let t = tar_with_pax_size(5, MAX_FILE_SIZE + 1, &big);
        let r = untar(&t);
        assert!(r.is_err(), "{:?}", r.map(|f| f[0].data.len()));
        // A PAX size within the limit is honoured.
        let t = tar_with_pax_size(0, 5, b"hello");
        assert_eq!(untar(&t).expect("pax tar")[0].data, b"hello");
    }

    #[test]
    fn truncated_tar_is_an_error() {
        let t = tar_of("a.txt", b"hello");
        // Header + data block, without the end-of-archive blocks.
        assert!(untar(&t[..1024]).is_err());
        // Cut inside the data.
        assert!(untar(&t[..515]).is_err());
        // Cut inside the header.
        assert!(untar(&t[..100]).is_err());
        // Nothing at all is no archive either.
        assert!(untar(b"").is_err());
        // The first end block is enough (the second is redundant).
        assert_eq!(untar(&t[..1536]).expect("one end block")[0].data, b"hello");
        // An archive of nothing but its end blocks is empty, not an error.
        assert!(untar(&[0u8; 1024]).expect("empty archive").is_empty());
    }

    #[test]
    fn huge_tar_sizes_are_errors_not_panics() {
        for size in [u64::MAX, u64::MAX - 511, 1 << 62, MAX_FILE_SIZE + 1] {
            for ty in [tar::EntryType::Regular, tar::EntryType::Directory] {
                let mut h = tar::Header::new_gnu();
                h.set_path("f").expect("path");
                h.set_entry_type(ty);
                h.set_size(size);
                h.set_cksum();
                let mut t = h.as_bytes().to_vec();
                t.extend_from_slice(&[0u8; 2048]);
                assert!(untar(&t).is_err(), "size {size} type {ty:?}");
            }
        }
    }

    #[test]
    fn key_after_junk_with_dashes_survives() {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY-----\n";
        for junk in ["junk-", "--", "----- not a key -----\n", "x----"] {
            let data = format!("{junk}{key}");
            assert_eq!(strip_key(data.as_bytes()).expect("key"), key, "{junk:?}");
        }
        // Without a BEGIN marker, the first `-----` still starts the key (as in the WebUI).
        assert_eq!(strip_key(b"xx-----abc").expect("key"), "-----abc");
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

/// Property tests: whatever the server sends, the decoders answer with files or an error,
/// never a panic; what a well-behaved server sends comes back exactly.
#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::tests::{multipart_of, tar_of};
    use super::*;

    fn config() -> ProptestConfig {
        ProptestConfig {
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    /// File names as Docker puts them in an archive: a base name, sometimes long (GNU long
    /// name), sometimes not ASCII.
    fn file_name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[A-Za-z0-9._-]{1,20}",
            "[a-z]{90,140}",
            "[\\p{L}\\p{N} ._-]{1,12}",
        ]
        .prop_filter("not . or ..", |n| n != "." && n != "..")
    }

    /// Contents, sometimes holding the multipart delimiter or zero blocks.
    fn contents() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..1500),
            Just(b"\r\n--BOUND\r\n\r\n--BOUND--\r\n".to_vec()),
            Just(vec![0u8; 1024]),
        ]
    }

    fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
        proptest::collection::vec((file_name(), contents()), 1..5)
    }

    /// A tar of several files (as a hostile server might send in one part).
    fn tar_of_all(files: &[(String, Vec<u8>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data.as_slice())
                .expect("append");
        }
        b.into_inner().expect("tar")
    }

    fn as_pairs(files: &[DownloadedFile]) -> Vec<(String, Vec<u8>)> {
        files
            .iter()
            .map(|f| (f.name.clone(), f.data.clone()))
            .collect()
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..4096),
            ct in prop_oneof![
                Just("multipart/mixed; boundary=b".to_owned()),
                Just("multipart/mixed".to_owned()),
                Just("application/x-tar".to_owned()),
                "[ -~]{0,40}",
            ],
        ) {
            let _ = decode_download(&ct, &body);
            let _ = untar(&body);
            let _ = parse_multipart(&body, "b");
        }

        /// Bodies made of the multipart vocabulary (delimiters, header lines with any
        /// Content-Length, CRLFs, data) reach the deep paths that random bytes never do.
        #[test]
        fn multipart_shaped_junk_never_panics(
            pieces in proptest::collection::vec(prop_oneof![
                Just(b"--b".to_vec()),
                Just(b"\r\n--b".to_vec()),
                Just(b"--b--".to_vec()),
                Just(b"\r\n".to_vec()),
                Just(b"\r\n\r\n".to_vec()),
                Just(b"Content-Encoding: identity\r\n".to_vec()),
                any::<u64>().prop_map(|n| format!("Content-Length: {n}\r\n").into_bytes()),
                (0usize..64).prop_map(|n| format!("Content-Length: {n}\r\n").into_bytes()),
                "[ -~]{0,10}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..40),
                Just(tar_of("a", b"A")),
            ], 0..24),
        ) {
            let body = pieces.concat();
            let _ = decode_download("multipart/mixed; boundary=b", &body);
        }

        /// Tar headers with any size, type and name (and a valid checksum, which random
        /// bytes never have) reach the size arithmetic.
        #[test]
        fn tar_header_junk_never_panics(
            headers in proptest::collection::vec(
                (any::<u64>(), any::<u8>(), "[a-z]{1,8}", any::<bool>()), 1..4),
            tail in proptest::collection::vec(any::<u8>(), 0..2048),
            zeros in 0usize..3,
        ) {
            let mut t = Vec::new();
            for (size, ty, name, small) in headers {
                let mut h = if small { tar::Header::new_ustar() } else { tar::Header::new_gnu() };
                let _ = h.set_path(&name);
                h.set_entry_type(tar::EntryType::new(ty));
                h.set_size(if small { size % 4096 } else { size });
                h.set_cksum();
                t.extend_from_slice(h.as_bytes());
                t.extend_from_slice(&tail);
            }
            t.extend_from_slice(&vec![0u8; 512 * zeros]);
            if let Ok(files) = untar(&t) {
                for f in files {
                    prop_assert!(f.data.len() as u64 <= MAX_FILE_SIZE);
                }
            }
        }

        #[test]
        fn multipart_of_tars_decodes_to_exactly_its_files(
            files in files(),
            boundary in "[A-Za-z0-9'()+_,./:=?-]{1,40}",
        ) {
            // One file per part, as the manager sends them.
            let tars: Vec<Vec<u8>> = files.iter().map(|(n, d)| tar_of(n, d)).collect();
            let body = multipart_of(&boundary, &tars);
            let ct = format!("multipart/mixed; boundary=\"{boundary}\"");
            let got = decode_download(&ct, &body).expect("valid multipart");
            prop_assert_eq!(as_pairs(&got), files.clone());
            // All files in one tar, bare.
            let got = decode_download("application/x-tar", &tar_of_all(&files)).expect("tar");
            prop_assert_eq!(as_pairs(&got), files);
        }

        #[test]
        fn truncated_archives_are_errors(
            files in files(),
            cut in any::<prop::sample::Index>(),
        ) {
            let tar = tar_of_all(&files);
            // Everything before the first end-of-archive block is needed; the second end
            // block is redundant.
            let needed = tar.len() - 512;
            // A random cut, and every cut at a block boundary (where the tar reader sees a
            // clean end of input and would take the prefix for a shorter archive).
            let cuts = (0..needed).step_by(512).chain([cut.index(needed)]);
            for at in cuts {
                prop_assert!(untar(&tar[..at]).is_err(), "cut at {} of {}", at, tar.len());
            }
            let got = untar(&tar[..needed]).expect("the first end block is enough");
            prop_assert_eq!(as_pairs(&got), files.clone());

            // The multipart body needs everything up to its closing delimiter.
            let tars: Vec<Vec<u8>> = files.iter().map(|(n, d)| tar_of(n, d)).collect();
            let body = multipart_of("BOUND", &tars);
            let needed = body.len() - 2;
            let at = cut.index(needed);
            prop_assert!(
                decode_download("multipart/mixed; boundary=BOUND", &body[..at]).is_err(),
                "cut at {} of {}", at, body.len()
            );
        }

        #[test]
        fn key_stripping_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(key) = strip_key(&data) {
                // What is left is a suffix of the input that starts at a marker.
                prop_assert!(key.starts_with("-----"));
                prop_assert!(data.ends_with(key.as_bytes()));
            }
        }

        #[test]
        fn a_key_survives_any_prefix_noise(
            noise in proptest::collection::vec(
                prop_oneof![any::<u8>(), Just(b'-'), Just(b'\n')], 0..200)
                .prop_filter("no BEGIN marker in the noise", |n| {
                    !n.windows(10).any(|w| w == b"-----BEGIN")
                }),
            kind in prop_oneof![Just("RSA PRIVATE KEY"), Just("OPENSSH PRIVATE KEY")],
            body in "[A-Za-z0-9+/=\n]{0,200}",
        ) {
            let key = format!("-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n");
            let mut data = noise;
            data.extend_from_slice(key.as_bytes());
            prop_assert_eq!(strip_key(&data).expect("key"), key);
        }
    }
}
