// Promotes the tested and approved digest from one environment to another (`vci promote --digest`); returns {from, to, digest, release_id, strategy, outcome}.

def call(Map args = [:]) {
    if (!args.digest) {
        error('vciPromote: digest is required (the sha256:... that was tested and approved, e.g. vciTest(...).digest)')
    }
    List words = ['promote', '--from', args.from ?: 'staging', '--to', args.to ?: 'production', '--digest', args.digest]
    words += vciCli.flag('--strategy', args.strategy)
    words += vciCli.flag('--approved-by', args.approvedBy)
    words += vciCli.flag('--timeout', args.timeout)
    words += vciCli.toggle('--dry-run', args.dryRun)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
