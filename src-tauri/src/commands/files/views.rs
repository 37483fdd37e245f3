//! The view types of the file browser and the transfer queue (`FileEntry`, `Listing`,
//! `TransferView` in TypeScript).

use bai_core::remote::{self, Direction, TransferInfo, TransferState};
use serde::Serialize;

use crate::error::CommandError;

/// A directory entry (`FileEntry` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "FileEntry")]
pub struct FileEntryView {
    /// The name.
    pub name: String,
    /// `file`, `dir`, `symlink` or `other`.
    #[ts(type = "\"file\" | \"dir\" | \"symlink\" | \"other\"")]
    pub kind: remote::EntryKind,
    /// Size in bytes.
    pub size: u64,
    /// Modification time (Unix seconds).
    pub mtime: Option<u64>,
    /// The POSIX mode.
    pub mode: Option<u32>,
    /// `drwxr-xr-x`.
    pub permissions: String,
    /// A symlink's target.
    pub link_target: Option<String>,
    /// What a symlink points to.
    #[ts(type = "\"file\" | \"dir\" | \"other\" | null")]
    pub target_kind: Option<remote::EntryKind>,
}

/// A directory listing (`Listing` in TypeScript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ts_rs::TS)]
#[ts(rename = "Listing")]
pub struct ListingView {
    /// The directory.
    pub path: String,
    /// Directories first, then by name; hidden ones included.
    pub entries: Vec<FileEntryView>,
}

impl From<remote::Listing> for ListingView {
    fn from(l: remote::Listing) -> Self {
        ListingView {
            path: l.path,
            entries: l
                .entries
                .into_iter()
                .map(|e| FileEntryView {
                    name: e.name,
                    kind: e.kind,
                    size: e.size,
                    mtime: e.mtime,
                    mode: e.mode,
                    permissions: e.permissions,
                    link_target: e.link_target,
                    target_kind: e.target_kind,
                })
                .collect(),
        }
    }
}

/// One transfer (`TransferView` in TypeScript).
#[derive(Debug, Clone, PartialEq, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct TransferView {
    /// Its id.
    pub id: u64,
    /// The session.
    pub session: String,
    /// `upload` or `download`.
    #[ts(type = "\"upload\" | \"download\"")]
    pub direction: Direction,
    /// The file or folder name.
    pub name: String,
    /// Where from.
    pub source: String,
    /// Where to.
    pub target: String,
    /// Bytes moved.
    pub bytes: u64,
    /// Bytes to move, once known.
    pub total: Option<u64>,
    /// Files done.
    pub files: u64,
    /// Files to move, once known.
    pub files_total: Option<u64>,
    /// Current speed.
    pub bytes_per_sec: f64,
    /// Seconds left.
    pub eta_secs: Option<u64>,
    /// `queued`, `running`, `done`, `failed` or `cancelled`.
    #[ts(type = "\"queued\" | \"running\" | \"done\" | \"failed\" | \"cancelled\"")]
    pub state: TransferState,
    /// Why it failed.
    pub error: Option<CommandError>,
}

impl From<TransferInfo> for TransferView {
    fn from(t: TransferInfo) -> Self {
        TransferView {
            id: t.id,
            session: t.session,
            direction: t.direction,
            name: t.name,
            source: t.source,
            target: t.target,
            bytes: t.bytes,
            total: t.total,
            files: t.files,
            files_total: t.files_total,
            bytes_per_sec: t.bytes_per_sec,
            eta_secs: t.eta_secs,
            state: t.state,
            error: t.error.map(|e| CommandError {
                code: e.code,
                message: e.message,
                hint: e.hint,
            }),
        }
    }
}
