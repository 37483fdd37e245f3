//! The `bai-desktop` binary: everything is in the library ([`bai_desktop::run`]).
// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    bai_desktop::run()
}
