//! The binary under test: the same entry point as `crm-users`, built in this package so the
//! integration tests know its path.

fn main() -> std::process::ExitCode {
    crm_users::cli::main()
}
