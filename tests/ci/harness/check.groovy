// Parses (compiles) each Groovy file named on the command line; prints "ok PATH" or "FAIL PATH: why".
int failures = 0
args.each { String path ->
    try {
        new GroovyShell().parse(new File(path))
        println "ok ${path}"
    } catch (Exception e) {
        failures++
        println "FAIL ${path}: ${e.message}"
    }
}
System.exit(failures ? 1 : 0)
