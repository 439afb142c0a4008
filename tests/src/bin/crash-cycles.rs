//! The long form of the crash-safety test (`it`'s `crash::` tests run a few cycles):
//!
//!     cargo run -p crm-users-tests --bin crash-cycles -- --cycles 200 [--seed N] [--max-ms 5000]
//!
//! Each cycle drives mixed writes into the real server, SIGKILLs it at a random moment,
//! runs `crm-users check` and verifies every acknowledged write after the restart. The server
//! is this same executable, re-run as `crm-users` (it links the library).

use std::process::ExitCode;
use std::time::Duration;

/// Set in the environment of the server processes this binary starts from itself.
const AS_SERVER: &str = "CRM_USERS_CRASH_CYCLES_SERVER";

fn main() -> ExitCode {
    if std::env::var_os(AS_SERVER).is_some() {
        return crm_users::cli::main();
    }
    let mut cycles = 20u32;
    let mut seed = crm_users_tests::crash::clock_seed();
    let mut max_ms = 5000u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let value = args.next();
        let parsed = match (arg.as_str(), value.as_deref().map(str::parse::<u64>)) {
            ("--cycles", Some(Ok(n))) => u32::try_from(n).map(|n| cycles = n).is_ok(),
            ("--seed", Some(Ok(n))) => {
                seed = n;
                true
            }
            ("--max-ms", Some(Ok(n))) => {
                max_ms = n;
                true
            }
            _ => false,
        };
        if !parsed {
            eprintln!(
                "usage: crash-cycles [--cycles N] [--seed N] [--max-ms MS]  (kill at a random moment in 0..MS, default 5000)"
            );
            return ExitCode::from(2);
        }
    }
    let Ok(me) = std::env::current_exe() else {
        eprintln!("crash-cycles: cannot find its own executable");
        return ExitCode::FAILURE;
    };
    println!("crash-cycles: {cycles} cycles, seed {seed}, kill within {max_ms} ms");
    let opts = crm_users_tests::crash::Options {
        server: me,
        server_env: vec![(AS_SERVER.to_owned(), "1".to_owned())],
        cycles,
        seed,
        offline_check: true,
        kill_after: (Duration::from_millis(100), Duration::from_millis(max_ms)),
    };
    match crm_users_tests::crash::run(opts) {
        Ok(report) => {
            println!(
                "ok: {} cycles, {} acknowledged writes all found, {} cut off by the kill ({} cut-off registrations complete, the rest absent), 0 index inconsistencies",
                report.cycles, report.acknowledged, report.cut_off, report.cut_off_registrations_present
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("crash-cycles FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
