// Entry point of `provenant`: finds the command whose words match the arguments and runs it.
import { EXIT_USAGE, processIo, type Command } from "../lib/cli/index.ts";
import { COMMAND_MODULES } from "./commands.ts";

/** Loads only the module that owns the first word; every module for help or an unknown word. */
async function loadCommands(first: string | undefined): Promise<Command[]> {
  const owners = COMMAND_MODULES.filter((m) => first !== undefined && m.words.includes(first));
  const lists = await Promise.all((owners.length > 0 ? owners : COMMAND_MODULES).map((m) => m.load()));
  return lists.flat();
}

function helpText(commands: readonly Command[]): string {
  const lines = commands.map((c) => `  provenant ${c.path.join(" ").padEnd(18)} ${c.summary}`);
  return `provenant: hardware-attested provenance for AI models\n\nusage:\n${lines.join("\n")}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const io = processIo();
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    io.stdout(helpText(await loadCommands(undefined)));
    return argv.length === 0 ? EXIT_USAGE : 0;
  }
  const commands = await loadCommands(argv[0]);
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
