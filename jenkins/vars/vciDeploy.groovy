// Deploys a run or an image digest to an environment (`vci deploy`); returns {environment, digest, release_id, endpoint}.

def call(Map args = [:]) {
    if (!args.target) {
        error('vciDeploy: target is required (a run id or REPO@sha256:...)')
    }
    List words = ['deploy', args.target, '--env', args.environment ?: 'staging']
    words += vciCli.flag('--timeout', args.timeout)
    words += vciCli.toggle('--dry-run', args.dryRun)
    words += vciCli.toggle('--no-wait', args.wait == false)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
