use std::process::ExitCode;

use clap::Parser;
use veritable_load::args::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match veritable_load::run_and_report(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("veritable-load: {error:#}");
            ExitCode::from(2)
        }
    }
}
