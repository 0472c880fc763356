import { Option, type Command } from 'commander';
import { lazy } from './lazy';

const impl = () => require('../commands/worker') as typeof import('../commands/worker');

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description(
      'run a worker in the foreground: steps run as processes on this host (local), as containers (containerd) or as pods in a namespace (kubernetes)',
    )
    .addOption(new Option('--runtime <runtime>', 'where steps run').choices(['local', 'containerd', 'kubernetes']).default('local'))
    .option('--name <name>', 'worker name; keep it stable so a restarted worker picks up its builds')
    .option(
      '--tag <tag>',
      'worker tag that steps may select with `tags:` (kubernetes: also a node selector); repeatable',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option(
      '--namespace <ns>',
      'kubernetes: the namespace step pods run in (one worker = one cluster + namespace)',
      process.env.POD_NAMESPACE,
    )
    .option('--kubeconfig <file>', 'kubernetes: kubeconfig file (default: in-cluster service account, else KUBECONFIG / ~/.kube/config)')
    .option('--context <name>', 'kubernetes: kubeconfig context (default: its current-context)')
    .option('--agent-image <ref>', 'kubernetes: image of the input-fetcher/output-streamer', process.env.CAUSEWAY_AGENT_IMAGE)
    .option('--default-image <ref>', 'containerd, kubernetes: image for tasks without image_resource or image')
    .option(
      '--containerd-socket <path>',
      'containerd: the socket of the containerd to use (default: the one `causeway dev up --runtime containerd` started)',
    )
    .option('--registry-hosts <dir>', "containerd: registry mirrors, containerd's hosts.toml per registry (DIR/docker.io/hosts.toml)")
    .addOption(
      new Option(
        '--oci-runtime <name>',
        "containerd: the OCI runtime containerd's shim runs: crun (about twice as fast to create and start a container), runc, or auto: crun where it is installed and the host's cgroups let it run, else runc (default: auto)",
      ).choices(['auto', 'runc', 'crun']),
    )
    .option(
      '--upload-address <host>',
      'kubernetes: serve `run -i` uploads to step pods, which reach this worker at this address (in a pod: its IP)',
    )
    .option('--upload-port <port>', 'kubernetes: port of that upload server', '7789')
    .option('--grace-period <seconds>', 'SIGTERM → SIGKILL grace of an aborted step', '10')
    .option(
      '--creds-file <file>',
      'the cluster-wide credential manager for ((vars)) no -v/-l gives: YAML {type: dummy|kubernetes|vault, config: {...}} (default: CAUSEWAY_CREDS_FILE, CAUSEWAY_CREDS)',
    )
    .option('--team <name>', 'Concourse team: the first segment of credential lookup paths (default: CAUSEWAY_CREDS_TEAM, else main)')
    .option(
      '--idtoken-issuer <url>',
      "the issuer of idtoken var sources' tokens (their `iss`), where verifiers fetch /.well-known/openid-configuration and jwks.json (default: CAUSEWAY_IDTOKEN_ISSUER; none: idtoken refs are refused)",
    )
    .option(
      '--idtoken-keys <file>',
      'their signing keys (0600, made when missing), the same file for every worker (default: CAUSEWAY_IDTOKEN_KEYS, else CAUSEWAY_HOME/idtoken-keys.json)',
    )
    .option('--no-redact-secrets', 'show credentials in step logs instead of ((redacted)); only to debug a credential manager')
    .addHelpText(
      'after',
      `
Connects to TEMPORAL_ADDRESS / NATS_URL, or to the running dev stack. Stopping a worker
(Ctrl-C, SIGTERM, even SIGKILL) leaves its running steps (processes or pods) alone, and a
worker started again with the same name re-attaches to them. A kubernetes worker needs
the Role in deploy/worker/role.yaml in its namespace; see docs/kubernetes.md.

Examples:
  causeway worker --name builder-1 --tag linux
  causeway worker --runtime containerd --containerd-socket /run/containerd/containerd.sock --default-image busybox
  causeway worker --runtime kubernetes --namespace ci --name k8s-ci`,
    )
    .action(lazy(() => impl().worker));
}
