use std::process::ExitCode;

use clap::Parser;
use veritable_proxy::config::{Cli, Command};
use veritable_proxy::store::migrate;
use veritable_proxy::{seed, server, shutdown, store, telemetry};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init(cli.log_format);
    let outcome = match cli.command {
        Command::Serve(config) => server::serve(config, shutdown::signal()).await,
        Command::Migrate(args) => migrate::run_cli(&args.db).await,
        Command::Seed(args) => seed::run_cli(&args).await,
        Command::Statement(args) => store::statement_cli(args.name.as_deref(), &args.substitutions),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("veritable-proxy: {error:#}");
            ExitCode::FAILURE
        }
    }
}
