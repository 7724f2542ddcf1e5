// Debian's Chromium for the browser tests and bench/lookup.ts: where it is, whether a suite must skip (absent and not
// in CI, with one line saying how to install it) or fail (absent under CI), and a launch with a fresh profile and the
// flags that keep a headless run quiet (no GPU, no background networking, no component updates, sync or first run).
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";

import { chromium, type BrowserContext } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const INSTALL_HINT = "apt-get install -y chromium";

/** True under CI (`CI` set to anything but "", "0" or "false"), where the browser suites are required. */
export function inCi(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = env.CI?.trim().toLowerCase();
  return value !== undefined && value !== "" && value !== "0" && value !== "false";
}

/**
 * What a browser suite does about Chromium: `false` to run; a one-line reason to skip (absent, not in CI). Absent
 * under CI throws: a silent skip there would hide that the page was never tested.
 */
export function chromiumSkip(env: NodeJS.ProcessEnv = process.env, executable = CHROMIUM): string | false {
  if (existsSync(executable)) return false;
  if (inCi(env))
    throw new Error(`${executable} is missing and CI is set: the browser tests are required (${INSTALL_HINT})`);
  return `${executable} is missing: browser tests skipped; install it with \`${INSTALL_HINT}\` (required when CI=true)`;
}

export const CHROMIUM_ARGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

export interface LaunchedChromium {
  context: BrowserContext;
  /** The fresh --user-data-dir (it names the browser's processes, e.g. for measuring their CPU time). */
  profile: string;
  /** Closes the browser and deletes its profile. */
  close(): Promise<void>;
}

/** Starts Chromium on a fresh --user-data-dir under the OS temp dir (removed on close). */
export async function launchChromium(): Promise<LaunchedChromium> {
  const profile = await mkdtemp(path.join(tmpdir(), "provenant-chromium-"));
  try {
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 1100, height: 900 },
    });
    return {
      context,
      profile,
      async close() {
        await context.close();
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(profile, { recursive: true, force: true });
    throw error;
  }
}
