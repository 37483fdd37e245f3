// Generated from the Rust types (src-tauri/src/bindings.rs); do not edit by hand.
// `BAI_UPDATE_BINDINGS=1 cargo test -p bai-desktop --lib bindings` rewrites it, and
// `make test` fails when it is stale.

/**
 * A small, stable classification of [`Error`]. It grows only when a caller (the CLI's exit
 * codes, the app's UI) branches on a new case. Serialized by its variant name
 * (`"SessionNotFound"`), which is what the UI receives.
 */
export type ErrorCode = "AuthFailed" | "LoginRequired" | "TotpRequired" | "PortInUse" | "SessionNotFound" | "SessionNotRunning" | "AppNotFound" | "FileNotFound" | "Network" | "Unreachable" | "BadUrl" | "UnsupportedVersion" | "Tls" | "Config" | "InvalidInput" | "SecretStore" | "Io" | "Unknown" | "HostKeyChanged" | "SshAuthFailed" | "Exists" | "Cancelled";

/** Every {@link ErrorCode}, for checking what a rejection carries. */
export const ERROR_CODES: readonly ErrorCode[] = ['AuthFailed', 'LoginRequired', 'TotpRequired', 'PortInUse', 'SessionNotFound', 'SessionNotRunning', 'AppNotFound', 'FileNotFound', 'Network', 'Unreachable', 'BadUrl', 'UnsupportedVersion', 'Tls', 'Config', 'InvalidInput', 'SecretStore', 'Io', 'Unknown', 'HostKeyChanged', 'SshAuthFailed', 'Exists', 'Cancelled'];

/**
 * A failed command, serialized as `{"code": "...", "message": "...", "hint": "..."}`.
 */
export type CommandError = { 
/**
 * What the UI branches on.
 */
code: ErrorCode, 
/**
 * What the UI shows (the same wording as the CLI's `error:` line).
 */
message: string, 
/**
 * The CLI's `hint:` line, when there is an obvious fix.
 */
hint?: string, };

/**
 * The demo server shown on the login screen (no password: it stays on the Rust side).
 */
export type SandboxInfo = { 
/**
 * The webserver URL.
 */
webserver: string, 
/**
 * The demo user's email.
 */
email: string, };

/**
 * The answer of `app_info`.
 */
export type AppInfo = { 
/**
 * The app's version (the workspace version, the same as `bai --version`).
 */
version: string, 
/**
 * The demo sandbox, if any.
 */
sandbox: SandboxInfo | null, };

/**
 * The server of the current login, as the About box shows it.
 */
export type ServerAbout = { 
/**
 * The endpoint.
 */
endpoint: string, 
/**
 * `session` or `api`.
 */
mode: string, 
/**
 * The server's API version, e.g. `v8.20240915`.
 */
apiVersion: string | null, 
/**
 * The manager's release, e.g. `24.09.0`.
 */
managerVersion: string | null, 
/**
 * Why the versions are missing (the server cannot be asked).
 */
error: string | null, };

/**
 * The answer of `about`.
 */
export type AboutView = { 
/**
 * bai's version.
 */
version: string, 
/**
 * The build commit.
 */
commit: string, 
/**
 * The server, when logged in.
 */
server: ServerAbout | null, 
/**
 * The folder of the app's log files, when the platform has one.
 */
logDir: string | null, };

/**
 * Session mode (email and password through the webserver) or API mode (an access/secret
 * keypair signed against the manager).
 */
export type LoginMode = "session" | "api";

/**
 * A server logged in to recently, as the login screen offers it.
 */
export type RecentServer = { 
/**
 * The endpoint URL (the webserver in session mode, the manager in API mode).
 */
endpoint: string, 
/**
 * How the login was made.
 */
mode: LoginMode, 
/**
 * The email (session mode) or access key (API mode): never a secret.
 */
user: string, };

/**
 * A login attempt from the login form: the `login` command's arguments.
 */
export type LoginRequest = { 
/**
 * The webserver URL (session mode) or the manager URL (API mode).
 */
endpoint: string, 
/**
 * `session` or `api`.
 */
mode: LoginMode, 
/**
 * Session mode: email.
 */
email?: string, 
/**
 * Session mode: password.
 */
password?: string, 
/**
 * API mode: access key.
 */
accessKey?: string, 
/**
 * API mode: secret key.
 */
secretKey?: string, 
/**
 * One-time password.
 */
otp?: string, 
/**
 * Keep the login for the next start.
 */
remember: boolean, };

/**
 * The transport security of the login's profile, as the header shows it.
 */
export type TlsState = { 
/**
 * `https` (TLS) or `http` (none).
 */
scheme: string, 
/**
 * Certificate verification is off (`bai login --insecure`).
 */
insecure: boolean, 
/**
 * An extra CA file is trusted (`bai login --ca-file`).
 */
caFile: string | null, 
/**
 * Set when the endpoint is plain http to another machine: why that is dangerous.
 */
warning: string | null, };

/**
 * Who is logged in where.
 */
export type LoginState = { 
/**
 * The endpoint URL.
 */
endpoint: string, 
/**
 * `session` or `api`.
 */
mode: LoginMode, 
/**
 * The email (session mode) or access key (API mode).
 */
user: string, 
/**
 * The user's role, when known.
 */
role?: string, 
/**
 * How the connection to the server is protected.
 */
tls: TlsState, };

/**
 * One app of a session, from its service ports (`SessionApp` in TypeScript).
 */
export type SessionApp = { 
/**
 * Its name (`jupyter`).
 */
name: string, 
/**
 * Its protocol (`http`, `tcp`, `preopen`, `vnc`, …).
 */
protocol: string, };

/**
 * One row of the session list (`Session` in TypeScript).
 */
export type Session = { 
/**
 * UUID.
 */
id: string, 
/**
 * Name.
 */
name: string, 
/**
 * Status, e.g. `RUNNING`.
 */
status: string, 
/**
 * Extra status information.
 */
statusInfo?: string, 
/**
 * Image reference.
 */
image: string, 
/**
 * Creation time (ISO 8601).
 */
createdAt: string, 
/**
 * Whether SSH/SFTP can be opened now.
 */
sshAvailable: boolean, 
/**
 * Why not (the tooltip).
 */
sshReason?: string, 
/**
 * The session's apps (its service ports, `sshd` included), in the server's order.
 */
apps: Array<SessionApp>, };

/**
 * The settings as the UI sees them. Numbers are wide so that out-of-range values arrive
 * here and get a readable `InvalidInput` instead of a deserialization failure.
 */
export type Settings = { 
/**
 * `null` = any free port.
 */
preferredSshPort: number | null, 
/**
 * 0 = off.
 */
refreshSeconds: number, 
/**
 * The account inside sessions.
 */
account: string, 
/**
 * Copied commands pin the session's host key (bai's known_hosts, `HostKeyAlias` = the
 * session id, `StrictHostKeyChecking accept-new`) instead of the guide's unchecked form.
 */
pinHostKeys?: boolean, 
/**
 * The tunnels open when the app quits are reopened at the next start (same ports when
 * free), after the saved login is restored. Default on.
 */
restoreTunnels?: boolean, 
/**
 * Closing the main window hides it into the tray while tunnels run. Default on.
 */
keepInTray?: boolean, 
/**
 * bai starts at login (the autostart plugin's OS entry). Default off.
 */
startAtLogin?: boolean, };

/**
 * The preferred port that was taken, and why.
 */
export type Fallback = { 
/**
 * The port asked for.
 */
preferred: number, 
/**
 * Why it was not used, naming both ports.
 */
reason: string, };

/**
 * The copyable command lines.
 */
export type CommandLines = { 
/**
 * `ssh …`.
 */
ssh: string, 
/**
 * `sftp …`.
 */
sftp: string, 
/**
 * `scp …`.
 */
scp: string, 
/**
 * `rsync …`.
 */
rsync: string, };

/**
 * The connection dialog of one tunnel (`TunnelInfo` in TypeScript).
 */
export type TunnelInfo = { 
/**
 * The session.
 */
session: string, 
/**
 * The local port.
 */
port: number, 
/**
 * The preferred port asked for, if any.
 */
preferredPort: number | null, 
/**
 * Set when the preferred port was taken.
 */
fallback: Fallback | null, 
/**
 * The account.
 */
user: string, 
/**
 * `127.0.0.1`.
 */
host: string, 
/**
 * `sftp://user@127.0.0.1:port`.
 */
sftpUrl: string, 
/**
 * Where the key was saved (OpenSSH format), once saved.
 */
keyPath: string | null, 
/**
 * Whether the session has an `id_container` key in its home.
 */
hasIdContainer: boolean, 
/**
 * Why the session's `id_container` could not be used, when downloading it failed.
 */
keyProblem: string | null, 
/**
 * Set when the key saved from this dialog is no longer in its file: why, and what to do.
 */
keyStale: string | null, 
/**
 * The user's own private key (remembered per profile), the commands' `-i` when the
 * session has no `id_container`; `null` otherwise.
 */
ownKey: string | null, 
/**
 * The command lines.
 */
commands: CommandLines, 
/**
 * The `~/.ssh/config` block for VS Code.
 */
vscodeConfig: string, 
/**
 * `vscode://vscode-remote/ssh-remote+bai-<session>/home/work`.
 */
vscodeUrl: string, };

/**
 * The key file formats `save_key` writes.
 */
export type KeyFormat = "openssh" | "ppk";

/**
 * One row of the active-tunnels panel.
 */
export type TunnelStatus = { 
/**
 * The session.
 */
session: string, 
/**
 * The app (`sshd` for SSH/SFTP).
 */
app: string, 
/**
 * Its protocol (`tcp`, `http`, …).
 */
protocol: string, 
/**
 * For an app opened in the browser: its URL.
 */
url: string | null, 
/**
 * The local port.
 */
port: number, 
/**
 * Connections open now.
 */
active: number, 
/**
 * Connections since the start.
 */
total: number, 
/**
 * Bytes to the session.
 */
bytesUp: number, 
/**
 * Bytes from the session.
 */
bytesDown: number, 
/**
 * When the tunnel started (ISO 8601).
 */
since: string, 
/**
 * The last connection error.
 */
lastError: string | null, };

/**
 * An open app tunnel (`AppTunnel` in TypeScript).
 */
export type AppTunnel = { 
/**
 * The session.
 */
session: string, 
/**
 * The app.
 */
app: string, 
/**
 * Its protocol.
 */
protocol: string, 
/**
 * `127.0.0.1`.
 */
host: string, 
/**
 * The local port.
 */
port: number, 
/**
 * For an app opened in the browser: the URL that was opened.
 */
url: string | null, };

/**
 * One item of the tray menu.
 */
export type TrayItem = { 
/**
 * What [`tray_action`] takes.
 */
id: string, 
/**
 * What the menu shows.
 */
label: string, 
/**
 * Whether it can be clicked.
 */
enabled: boolean, };

/**
 * A tunnel reopened at start.
 */
export type ReopenedTunnel = { 
/**
 * The session's name.
 */
session: string, 
/**
 * The app (`sshd`, `jupyter`, …).
 */
app: string, 
/**
 * The port it listens on now.
 */
port: number, 
/**
 * The port it had last time, when that one was taken.
 */
movedFrom: number | null, 
/**
 * Why it moved, naming both ports.
 */
note: string | null, };

/**
 * A tunnel of the last run that was not reopened.
 */
export type DroppedTunnel = { 
/**
 * The session's name (as it was).
 */
session: string, 
/**
 * The app.
 */
app: string, 
/**
 * Why ("the session ended …").
 */
reason: string, };

/**
 * What `restore_tunnels` did (both lists empty: nothing to tell).
 */
export type RestoredTunnels = { 
/**
 * Open again.
 */
reopened: Array<ReopenedTunnel>, 
/**
 * Not reopened, with the reason.
 */
dropped: Array<DroppedTunnel>, };

/**
 * Where a key was saved.
 */
export type SavedKey = { 
/**
 * The file.
 */
path: string, };

/**
 * The account's keypair as Preferences shows it: the public half only.
 */
export type AccountKeyView = { 
/**
 * The OpenSSH public key line.
 */
publicKey: string, 
/**
 * Its SHA256 fingerprint (`SHA256:…`), when the line parses.
 */
fingerprint: string | null, };

/**
 * An open terminal (`TerminalView` in TypeScript).
 */
export type TerminalView = { 
/**
 * Its id (for input, resize, close).
 */
id: number, 
/**
 * The session.
 */
session: string, 
/**
 * The account logged in.
 */
user: string, 
/**
 * `user@session`.
 */
title: string, };

/**
 * What the terminal's channel carries (`TerminalEvent` in TypeScript).
 */
export type TerminalEvent = { "kind": "data", 
/**
 * Base64 of the bytes.
 */
data: string, } | { "kind": "exit", 
/**
 * Its exit status.
 */
status: number | null, 
/**
 * The signal that ended it.
 */
signal: string | null, } | { "kind": "closed", 
/**
 * Why, when it failed.
 */
error: CommandError | null, };

/**
 * A directory entry (`FileEntry` in TypeScript).
 */
export type FileEntry = { 
/**
 * The name.
 */
name: string, 
/**
 * `file`, `dir`, `symlink` or `other`.
 */
kind: "file" | "dir" | "symlink" | "other", 
/**
 * Size in bytes.
 */
size: number, 
/**
 * Modification time (Unix seconds).
 */
mtime: number | null, 
/**
 * The POSIX mode.
 */
mode: number | null, 
/**
 * `drwxr-xr-x`.
 */
permissions: string, 
/**
 * A symlink's target.
 */
linkTarget: string | null, 
/**
 * What a symlink points to.
 */
targetKind: "file" | "dir" | "other" | null, };

/**
 * A directory listing (`Listing` in TypeScript).
 */
export type Listing = { 
/**
 * The directory.
 */
path: string, 
/**
 * Directories first, then by name; hidden ones included.
 */
entries: Array<FileEntry>, };

/**
 * One transfer (`TransferView` in TypeScript).
 */
export type TransferView = { 
/**
 * Its id.
 */
id: number, 
/**
 * The session.
 */
session: string, 
/**
 * `upload` or `download`.
 */
direction: "upload" | "download", 
/**
 * The file or folder name.
 */
name: string, 
/**
 * Where from.
 */
source: string, 
/**
 * Where to.
 */
target: string, 
/**
 * Bytes moved.
 */
bytes: number, 
/**
 * Bytes to move, once known.
 */
total: number | null, 
/**
 * Files done.
 */
files: number, 
/**
 * Files to move, once known.
 */
filesTotal: number | null, 
/**
 * Current speed.
 */
bytesPerSec: number, 
/**
 * Seconds left.
 */
etaSecs: number | null, 
/**
 * `queued`, `running`, `done`, `failed` or `cancelled`.
 */
state: "queued" | "running" | "done" | "failed" | "cancelled", 
/**
 * Why it failed.
 */
error: CommandError | null, };

/** Input limits, checked again by the Rust side (bai-core). */
export const PORT_MIN = 1025;
export const PORT_MAX = 65534;
export const ACCOUNT_MAX = 32;
export const REFRESH_MIN = 5;
export const REFRESH_MAX = 3600;
