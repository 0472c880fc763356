// The test cluster lives in cli/dev/k8s/ (`causeway dev up --runtime kubernetes` starts the
// same one); tests and benchmarks import it from here.
//   node dist/test/k8s/cluster.js up DIR [--real]   starts one in DIR (prints KUBECONFIG=...), leaves it
//                                                    running; --real: a real node instead of KWOK's
//   node dist/test/k8s/cluster.js down DIR   stops it
import { startCluster, stopCluster } from '../../cli/dev/k8s/cluster';

export * from '../../cli/dev/k8s/cluster';

if (require.main === module) {
  const [cmd, dir, flag] = process.argv.slice(2);
  if (!dir || (cmd !== 'up' && cmd !== 'down') || (flag !== undefined && flag !== '--real')) {
    process.stderr.write('usage: node dist/test/k8s/cluster.js up|down DIR [--real]\n');
    process.exit(2);
  }
  const log = (line: string) => process.stderr.write(`[k8s] ${line}\n`);
  const main = async () => {
    if (cmd === 'down') return stopCluster(dir);
    const started = Date.now();
    const state = await startCluster({ dir, log, node: flag === '--real' ? 'real' : 'kwok' });
    log(`ready in ${Date.now() - started} ms: ${JSON.stringify(state.timings)}`);
    process.stdout.write(`KUBECONFIG=${state.kubeconfig}\n`);
  };
  main().catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
}
