// Promotes the digest one environment verified to another (`vci promote`); returns {from, to, digest, release_id, strategy, outcome}.

def call(Map args = [:]) {
    List words = ['promote', '--from', args.from ?: 'staging', '--to', args.to ?: 'production']
    words += vciCli.flag('--strategy', args.strategy)
    words += vciCli.flag('--approved-by', args.approvedBy)
    words += vciCli.flag('--timeout', args.timeout)
    words += vciCli.toggle('--dry-run', args.dryRun)
    words += vciCli.flag('--store', args.store)
    return vciCli(words)
}
