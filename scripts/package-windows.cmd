@echo off
rem Build the test-signed partyline driver package on Windows (what `cargo make package` runs
rem there): partyline.sys, .pdb, .inf, .exe, then scripts\sign-windows.cmd adds partyline.cat and
rem partyline-test.cer. Needs rustup (MSVC host toolchain for partyline.exe) and the WDK's inf2cat
rem and signtool on PATH. Linux: scripts/package.sh.
rem
rem usage: scripts\package-windows.cmd <package-dir> <target-dir>
setlocal
set "PKG=%~1"
set "TARGET=%~2"
if "%TARGET%"=="" (
  echo usage: %~nx0 ^<package-dir^> ^<target-dir^> 1>&2
  exit /b 2
)
cd /d "%~dp0.."

echo == partyline.sys and partyline.pdb
cargo build --release --locked -p partyline-image
if errorlevel 1 exit /b 1
echo == partyline.exe
cargo build --release --locked -p partyline-cli
if errorlevel 1 exit /b 1

echo == assembling %PKG%
if exist "%PKG%" rmdir /s /q "%PKG%"
mkdir "%PKG%"
if errorlevel 1 exit /b 1
copy /y "%TARGET%\driver\partyline.sys" "%PKG%\" >nul || exit /b 1
copy /y "%TARGET%\driver\partyline.pdb" "%PKG%\" >nul || exit /b 1
copy /y "inf\partyline.inf" "%PKG%\" >nul || exit /b 1
copy /y "%TARGET%\release\partyline.exe" "%PKG%\" >nul || exit /b 1
copy /y "scripts\windows-test.ps1" "%PKG%\" >nul || exit /b 1

call "%~dp0sign-windows.cmd" "%PKG%"
if errorlevel 1 exit /b 1

for %%f in (partyline.sys partyline.inf partyline.cat partyline.pdb partyline-test.cer partyline.exe) do (
  if not exist "%PKG%\%%f" (
    echo error: the package lacks %%f 1>&2
    exit /b 1
  )
)
echo packaged: %PKG%
exit /b 0
