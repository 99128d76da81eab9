// Runs `vci ARGS --output json` in a single `sh` step and returns its one JSON object, parsed.
// Every word is single-quoted for the shell, so no argument can inject a command.

def call(List args) {
    List<String> words = ['vci'] + args.collect { it.toString() } + ['--output', 'json']
    String command = words.collect { quoteWord(it) }.join(' ')
    String stdout = sh(script: command, returnStdout: true).trim()
    if (!stdout) {
        error("vci ${args ? args[0] : ''} printed no result")
    }
    return readJSON(text: stdout.readLines().last())
}

String quoteWord(String word) {
    return "'" + word.replace("'", "'\"'\"'") + "'"
}

List<String> flag(String name, Object value) {
    return (value == null || value.toString() == '') ? [] : [name, value.toString()]
}

List<String> toggle(String name, Object value) {
    return value ? [name] : []
}
