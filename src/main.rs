//! The `switchyard` binary: parse the command line, run, map errors to exit codes.

use clap::Parser as _;

#[tokio::main]
async fn main() {
    let cli = switchyard::cli::Cli::parse();
    let code = match switchyard::cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
