<#
.SYNOPSIS
  One-shot test of the partyline package on a Windows test machine (x64, test signing on),
  run from an elevated PowerShell in the package folder:
    powershell -ExecutionPolicy Bypass -File .\windows-test.ps1 See docs/INSTALL.md, "The one-shot test".

.DESCRIPTION
  1. Checks: administrator, x64, TESTSIGNING on, the six package files present.
  2. Trusts partyline-test.cer (LocalMachine Root and TrustedPublisher) and checks the
     signatures of partyline.sys and partyline.cat with Get-AuthenticodeSignature.
  3. Driver Verifier: if partyline.sys is not yet verified with -Flags, sets
     `verifier /flags <Flags> /driver partyline.sys` and stops: restart, then run the script
     again (Driver Verifier settings take effect at the next boot). -NoVerifier skips this.
  4. Installs the protocol with `netcfg -l partyline.inf -c p -i PL_PARTYLINE`, starts the
     service if NDIS did not, and checks that \\.\Partyline answers.
  5. Runs the scenario (`partyline.exe run <Scenario>`), then prints `partyline.exe counters`,
     `partyline.exe list` and `verifier /query` (the verified driver's counters).
  6. Uninstalls: `netcfg -u PL_PARTYLINE`, then removes the package from the driver store
     (`pnputil /delete-driver <oemNN.inf> /uninstall`), and reports whether the service is gone.
  Exit status: 0 all steps passed, 1 a step failed, 3 restart needed for Driver Verifier.

.PARAMETER Package
  The package folder (default: the current folder; `cargo make package` puts a copy of this
  script there).

.PARAMETER Flags
  The Driver Verifier flags; default 0x2209BB (standard + NDIS/WIFI verification).
  docs/INSTALL.md lists the other runs (0x2609BB, 0x2209BF).

.PARAMETER Scenario
  The scenario to run against the device: a shipped name (`partyline.exe scenarios`) or a file.

.PARAMETER NoVerifier
  Test without Driver Verifier.

.PARAMETER ResetVerifier
  After the test, turn Driver Verifier off (`verifier /reset`; takes effect at the next boot).
#>
[CmdletBinding()]
param(
    [string] $Package = (Get-Location).Path,
    [string] $Flags = "0x2209BB",
    [string] $Scenario = "default",
    [switch] $NoVerifier,
    [switch] $ResetVerifier
)

Set-StrictMode -Version Latest
$ErrorActionPreference = "Stop"
$package = (Resolve-Path $Package).Path
$componentId = "PL_PARTYLINE"
$failures = New-Object System.Collections.Generic.List[string]

function Step([string] $text) { Write-Host ""; Write-Host "== $text" -ForegroundColor Cyan }
function Fail([string] $text) { Write-Host "FAILED: $text" -ForegroundColor Red; $failures.Add($text) }
function Pass([string] $text) { Write-Host "ok: $text" -ForegroundColor Green }

# Runs a native program, echoes its output, and returns its exit code.
function Run([string] $program, [string[]] $arguments) {
    Write-Host "> $program $($arguments -join ' ')"
    # Windows PowerShell turns a native program's stderr lines into errors: keep going on them.
    $ErrorActionPreference = "Continue"
    $output = & $program @arguments 2>&1
    $code = $LASTEXITCODE
    $output | ForEach-Object { Write-Host "  $_" }
    return $code
}

function Finish {
    Step "result"
    if ($failures.Count -eq 0) {
        Write-Host "all steps passed" -ForegroundColor Green
        exit 0
    }
    Write-Host "$($failures.Count) step(s) failed:" -ForegroundColor Red
    $failures | ForEach-Object { Write-Host "  - $_" -ForegroundColor Red }
    exit 1
}

Step "prerequisites"
$principal = New-Object Security.Principal.WindowsPrincipal([Security.Principal.WindowsIdentity]::GetCurrent())
if (-not $principal.IsInRole([Security.Principal.WindowsBuiltInRole]::Administrator)) {
    Write-Host "run this script from an elevated PowerShell (Run as administrator)" -ForegroundColor Red
    exit 1
}
if (-not [Environment]::Is64BitOperatingSystem) {
    Write-Host "partyline.sys is x64 only" -ForegroundColor Red
    exit 1
}
$missing = @("partyline.sys", "partyline.inf", "partyline.cat", "partyline.pdb", "partyline-test.cer", "partyline.exe") |
    Where-Object { -not (Test-Path (Join-Path $package $_)) }
if ($missing) {
    Write-Host "the package folder $package lacks: $($missing -join ', ')" -ForegroundColor Red
    exit 1
}
# "The TESTSIGNING Boot Configuration Option": test-signed drivers load only with it on.
$boot = (bcdedit /enum "{current}") -join "`n"
if ($boot -notmatch "(?im)^testsigning\s+Yes") {
    Write-Host "TESTSIGNING is off: run 'bcdedit /set testsigning on', restart, and run this script again" -ForegroundColor Red
    exit 1
}
$build = [Environment]::OSVersion.Version.Build
Pass "administrator, x64, TESTSIGNING on, package complete, Windows build $build"
if ($build -ge 25319) {
    Write-Host "  (build 25319 or later: the package runs from the driver store, DIRID 13)"
} else {
    Write-Host "  (build before 25319: the image is copied to System32\drivers, DIRID 12)"
}

Step "trust the test certificate"
# "Installing a Test Certificate on a Test Computer": Trusted Root and Trusted Publishers.
$cer = Join-Path $package "partyline-test.cer"
foreach ($store in @("Root", "TrustedPublisher")) {
    if ((Run "certutil.exe" @("-addstore", "-f", $store, $cer)) -ne 0) { Fail "certutil -addstore $store" }
}
foreach ($file in @("partyline.sys", "partyline.cat")) {
    $signature = Get-AuthenticodeSignature (Join-Path $package $file)
    if ($signature.Status -eq "Valid") {
        Pass "$file signature: Valid ($($signature.SignerCertificate.Subject))"
    } else {
        Fail "$file signature: $($signature.Status) $($signature.StatusMessage)"
    }
}

if (-not $NoVerifier) {
    Step "Driver Verifier ($Flags on partyline.sys)"
    # verifier.exe keeps its settings in the registry (VerifyDrivers, VerifyDriverLevel under
    # Session Manager\Memory Management) and applies them at boot; a marker file remembers when
    # this script set them, so a second run knows whether the machine restarted since.
    $mm = Get-ItemProperty "HKLM:\SYSTEM\CurrentControlSet\Control\Session Manager\Memory Management"
    $drivers = if ($mm.PSObject.Properties["VerifyDrivers"]) { [string] $mm.VerifyDrivers } else { "" }
    $level = if ($mm.PSObject.Properties["VerifyDriverLevel"]) { [uint32] $mm.VerifyDriverLevel } else { [uint32] 0 }
    $wanted = [Convert]::ToUInt32($Flags.ToLower().Replace("0x", ""), 16)
    $marker = Join-Path $env:ProgramData "partyline-verifier-set.txt"
    $set = ($drivers -split "\s+" -contains "partyline.sys") -and (($level -band $wanted) -eq $wanted)
    if (-not $set) {
        # "Verifier Command Syntax": /flags and /driver take effect at the next boot.
        if ((Run "verifier.exe" @("/flags", $Flags, "/driver", "partyline.sys")) -ne 0) {
            Fail "verifier /flags $Flags /driver partyline.sys"
            Finish
        }
        (Get-Date).ToUniversalTime().ToString("o") | Set-Content -Path $marker
        Write-Host ""
        Write-Host "Driver Verifier is set for partyline.sys: restart, then run this script again." -ForegroundColor Yellow
        exit 3
    }
    $boot = (Get-CimInstance Win32_OperatingSystem).LastBootUpTime.ToUniversalTime()
    if ((Test-Path $marker) -and ([DateTime]::Parse((Get-Content $marker -Raw).Trim()).ToUniversalTime() -gt $boot)) {
        Write-Host "Driver Verifier was set after the last restart: restart, then run this script again." -ForegroundColor Yellow
        exit 3
    }
    Run "verifier.exe" @("/querysettings") | Out-Null
    Pass "Driver Verifier verifies partyline.sys with $Flags"
}

Step "install (netcfg)"
# "netcfg": /l the INF, /c p the protocol class, /i the component id.
$inf = Join-Path $package "partyline.inf"
if ((Run "netcfg.exe" @("-l", $inf, "-c", "p", "-i", $componentId)) -ne 0) {
    Fail "netcfg -l partyline.inf -c p -i $componentId"
    Finish
}
Run "netcfg.exe" @("-q", $componentId) | Out-Null
$service = Get-Service -Name partyline -ErrorAction SilentlyContinue
if (-not $service) {
    Fail "no service 'partyline' after the installation"
} else {
    if ($service.Status -ne "Running") {
        Write-Host "  the service is $($service.Status); starting it"
        try { Start-Service -Name partyline } catch { Fail "Start-Service partyline: $_" }
    }
    $service.Refresh()
    if ($service.Status -eq "Running") { Pass "service partyline running" }
}
Run "netcfg.exe" @("-b", $componentId) | Out-Null

$exe = Join-Path $package "partyline.exe"
Step "scenario '$Scenario' against \\.\Partyline"
# Without an ATM (CoNDIS) miniport and call manager, the scenario's calls fail with a clear
# status per step: that is expected here (docs/INSTALL.md says what this test cannot check).
$code = Run $exe @("run", $Scenario)
Write-Host "  partyline run exit status: $code (0 clean, 1 a step failed, 2 no device or bad scenario)"
if ($code -eq 2) { Fail "partyline run $Scenario could not reach the device" }

Step "driver counters"
if ((Run $exe @("counters")) -ne 0) { Fail "partyline counters" }
if ((Run $exe @("list")) -ne 0) { Fail "partyline list" }
if (-not $NoVerifier) {
    Step "Driver Verifier counters (verifier /query)"
    Run "verifier.exe" @("/query") | Out-Null
}

Step "uninstall"
if ((Run "netcfg.exe" @("-u", $componentId)) -ne 0) { Fail "netcfg -u $componentId" }
# The package stays in the driver store until pnputil removes it; find its oemNN.inf by the
# original name.
$published = $null
$current = $null
foreach ($line in (pnputil /enum-drivers)) {
    if ($line -match "^\s*Published Name\s*:\s*(\S+)") { $current = $Matches[1] }
    if ($line -match "^\s*Original Name\s*:\s*partyline\.inf\s*$") { $published = $current }
}
if ($published) {
    if ((Run "pnputil.exe" @("/delete-driver", $published, "/uninstall")) -ne 0) { Fail "pnputil /delete-driver $published" }
} else {
    Write-Host "  partyline.inf is not in the driver store (already removed?)"
}
$left = Get-Service -Name partyline -ErrorAction SilentlyContinue
if ($left) {
    Write-Host "  the service 'partyline' is still registered ($($left.Status)); it goes at the next restart" -ForegroundColor Yellow
} else {
    Pass "service partyline removed"
}
if ($ResetVerifier -and -not $NoVerifier) {
    Run "verifier.exe" @("/reset") | Out-Null
    Write-Host "  Driver Verifier is off from the next restart"
}
Finish
