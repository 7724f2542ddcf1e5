// Entry point of `provenant`: finds the command whose words match the arguments and runs it.
import { EXIT_USAGE, processIo, type Command } from "../lib/cli/index.ts";
import { COMMAND_MODULES } from "./commands.ts";

async function loadCommands(): Promise<Command[]> {
  const lists = await Promise.all(COMMAND_MODULES.map((load) => load()));
  return lists.flat();
}

function helpText(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  provenant ${c.path.join(" ").padEnd(18)} ${c.summary}`);
  return `provenant: hardware-attested provenance for AI models\n\nusage:\n${lines.join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const io = processIo();
  const commands = await loadCommands();
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.stdout(helpText(commands));
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  // Longest match first, so that `job audit` wins over a hypothetical `job`.
  const match = [...commands]
    .sort((a, b) => b.path.length - a.path.length)
    .find((c) => c.path.every((word, i) => argv[i] === word));
  if (match === undefined) {
    io.stderr(`error USAGE: unknown command '${argv.join(" ")}'\n\n${helpText(commands)}`);
    return EXIT_USAGE;
  }
  const rest = argv.slice(match.path.length);
  if (rest.includes("--help") || rest.includes("-h")) {
    io.stdout(`usage: ${match.usage}\n`);
    return 0;
  }
  return match.run(rest, io);
}

process.exitCode = await main(process.argv.slice(2));
