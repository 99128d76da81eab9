// Returns an environment to an earlier release (`vci rollback`); returns {environment, digest, release_id, restored, outcome}.

def call(Map args = [:]) {
    List words = ['rollback', '--env', args.environment ?: 'production']
    words += vciCli.flag('--to', args.to)
    words += vciCli.toggle('--dry-run', args.dryRun)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
